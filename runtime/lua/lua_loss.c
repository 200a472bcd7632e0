/* lua_loss.c — qd.loss (losses with gradients), qd.ot (optimal transport on a cost matrix)
 * and qd.superfidelity. Thin: validate, call loss.c / transport.c, wrap the results.
 * Gradients come back shaped like the inputs (a State, DensityMatrix or Ensemble holding
 * dL/d(conj x), a real qd.Vector holding dL/dp for probability vectors); the convention
 * is documented in qd_loss.h and docs/api.md ("Losses"). */
#include "lua_util.h"
#include "qd_loss.h"
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <stdio.h>

/* ------------------------------------------------------------------ helpers */

static int typeerr(lua_State *L, int arg, const char *expected)
{
    const char *got = luaL_getmetafield(L, arg, "__name") == LUA_TSTRING ? lua_tostring(L, -1)
                                                                        : luaL_typename(L, arg);
    return luaL_argerror(L, arg, lua_pushfstring(L, "%s expected, got %s", expected, got));
}

/* a number option: def if absent; must be > lo (open) or >= lo */
/* {grad = true}: the gradient ensembles dL/dA*, dL/dB* (new registers shaped like A and B,
 * pushed) */
static void grad_regs(lua_State *L, const qdl_reg *A, const qdl_reg *B, qd_c **GA, qd_c **GB)
{
    *GA = qdL_newreg(L, A->kind, A->n, A->count)->a;
    *GB = qdL_newreg(L, B->kind, B->n, B->count)->a;
}

/* returns value [, gradient]: with grad the stack ends in gradient, value (swapped here) */
static int value_then_grad(lua_State *L, int grad)
{
    if (!grad)
        return 1;
    lua_rotate(L, -2, 1);
    return 2;
}

/* a buffer that lives on the Lua stack (collected whatever error follows) */
static void *tmpbuf(lua_State *L, size_t bytes)
{
    return lua_newuserdatauv(L, bytes ? bytes : 1, 0);
}

/* a bigger scratch buffer in stack slot `slot` (the old one's first `used` bytes copied; the
 * old one left to the collector): buffers that grow with the entries a table really has */
static void *tmpbuf_grow(lua_State *L, int slot, const void *old, size_t used, size_t bytes)
{
    void *p = tmpbuf(L, bytes);
    memcpy(p, old, used);
    lua_replace(L, slot);
    return p;
}

/* real vector from a qd.Vector (real) or a table of numbers, copied to a stack buffer */
static double *checkreal(lua_State *L, int arg, size_t *len, const char *what)
{
    arg = lua_absindex(L, arg);
    qdl_array *A = qdL_testarray(L, arg);
    if (A) {
        if (A->cplx)
            luaL_argerror(L, arg, lua_pushfstring(L, "real %s expected, got a complex array", what));
        size_t n = A->rows * A->cols;
        double *b = tmpbuf(L, sizeof(double) * n);
        memcpy(b, A->data, sizeof(double) * n);
        *len = n;
        return b;
    }
    if (!lua_istable(L, arg))
        typeerr(L, arg, lua_pushfstring(L, "%s (qd.Vector or table of numbers)", what));
    lua_Integer n = qdL_checklen(L, arg, arg, (lua_Integer)1 << 40, what);
    if (n < 1)
        luaL_argerror(L, arg, lua_pushfstring(L, "non-empty %s expected", what));
    /* the buffer grows with what was read (doubling, in one stack slot): a table whose length
     * lies (a huge __len, then nil) fails at the first missing entry without first
     * allocating for the length it claimed */
    size_t cap = (size_t)n < 4096 ? (size_t)n : 4096;
    double *b = tmpbuf(L, sizeof(double) * cap);
    const int slot = lua_gettop(L);
    for (lua_Integer i = 1; i <= n; i++) {
        if ((size_t)(i - 1) == cap) {
            size_t nc = 2 * cap < (size_t)n ? 2 * cap : (size_t)n;
            b = tmpbuf_grow(L, slot, b, sizeof(double) * cap, sizeof(double) * nc);
            cap = nc;
        }
        if (lua_geti(L, arg, i) != LUA_TNUMBER)
            luaL_argerror(L, arg, lua_pushfstring(L, "number expected at position %d of %s, got %s",
                                                  (int)i, what, luaL_typename(L, -1)));
        b[i - 1] = lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    *len = (size_t)n;
    return b;
}

/* A real vector argument read in two phases, so that no Lua code runs between taking a
 * view of a qd.Vector's own buffer and the computation (Lua code — a table's metamethods,
 * an option's, a finalizer run by an allocation — could free the vector):
 *   rv_len   tables are copied to the stack (reading them may run Lua code); vectors only
 *            give their length. Call it for every such argument first.
 *   then the options are read and the results allocated;
 *   rv_data  the vector's buffer (checked again: not freed), or the copy, validated:
 *            RV_PROB probabilities (>= 0, finite), RV_FINITE finite entries. */
typedef struct {
    int arg;
    size_t len;
    const double *p;   /* the copy of a table; NULL for a vector until rv_data */
    const char *what;
} rvec;

enum { RV_PROB = 1, RV_FINITE = 2 };

static void rv_len(lua_State *L, int arg, rvec *v, const char *what)
{
    v->arg = arg;
    v->what = what;
    v->p = NULL;
    qdl_array *A = qdL_testarray(L, arg);
    if (A && !A->cplx && !A->freed && A->data)
        v->len = A->rows * A->cols;
    else   /* a table (copied), or checkreal's error */
        v->p = checkreal(L, arg, &v->len, what);
}

/* 2^n entries, n >= 1 expected: n */
static int rv_pow2(lua_State *L, const rvec *v)
{
    int n = 0;
    while (((size_t)1 << n) < v->len)
        n++;
    if (((size_t)1 << n) != v->len || n < 1)
        luaL_argerror(L, v->arg, lua_pushfstring(L, "%s of length 2^n expected, got length %d", v->what,
                                                 (int)v->len));
    return n;
}

/* 1 if an entry of p[b, e) may fail the check: on the high 32 bits of each double (loops
 * that vectorise even on the baseline x86-64): exponent all ones (NaN, infinite), or for
 * probabilities the sign bit (so -0 is looked at again, exactly, by the caller) */
static int rv_suspect(const double *p, size_t b, size_t e, int check)
{
    const uint32_t sign = check == RV_PROB ? 0x80000000u : 0;
    uint32_t bad = 0;
    for (size_t i = b; i < e; i++) {
        uint64_t u;
        memcpy(&u, p + i, sizeof u);
        uint32_t hi = (uint32_t)(u >> 32);
        bad |= (hi & sign) | ((hi & 0x7ff00000u) == 0x7ff00000u);
    }
    return bad != 0;
}

/* index of the first entry that fails the check, or len: blocks scanned branch-free, the
 * exact position looked for only in a block that failed */
static size_t rv_first_bad(const double *p, size_t len, int check)
{
    for (size_t b = 0; b < len; b += 256) {
        size_t e = b + 256 < len ? b + 256 : len;
        if (rv_suspect(p, b, e, check))
            for (size_t i = b; i < e; i++)
                if (check == RV_PROB ? !(p[i] >= 0.0) || p[i] == INFINITY : !isfinite(p[i]))
                    return i;
    }
    return len;
}

static const double *rv_data(lua_State *L, rvec *v, int check)
{
    if (!v->p) {
        qdl_array *A = qdL_testarray(L, v->arg);
        if (!A || A->freed || !A->data || A->rows * A->cols != v->len)
            luaL_argerror(L, v->arg, lua_pushfstring(L, "%s was freed or changed while in use", v->what));
        v->p = A->data;
    }
    size_t i = rv_first_bad(v->p, v->len, check);
    if (i < v->len)
        luaL_argerror(L, v->arg, lua_pushfstring(L, check == RV_PROB ? "probabilities >= 0 expected, got %f at position %d"
                                                                      : "finite entries expected, got %f at position %d",
                                                 v->p[i], (int)(i + 1)));
    return v->p;
}

/* the same length as a (argument b's length error otherwise) */
static void rv_samelen(lua_State *L, const rvec *a, const rvec *b)
{
    if (a->len != b->len)
        luaL_argerror(L, b->arg, lua_pushfstring(L, "%s of length %d expected, got %d", b->what, (int)a->len,
                                                 (int)b->len));
}

/* State (as a one-member ensemble) or Ensemble */
static qdl_reg *checkens(lua_State *L, int arg)
{
    qdl_reg *r = qdL_testkind(L, arg, QDL_K_ENS);
    if (!r)
        r = qdL_testkind(L, arg, QDL_K_STATE);
    if (!r)
        typeerr(L, arg, "qd.Ensemble or qd.State");
    if (!r->a)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s has been freed", qdL_kindname(r->kind)));
    return r;
}

static void samesize(lua_State *L, qdl_reg *a, qdl_reg *b, int arg)
{
    if (a->n != b->n)
        luaL_argerror(L, arg, lua_pushfstring(L, "%d-qubit %s expected, got %d qubits", a->n,
                                              a->kind == QDL_K_ENS || b->kind == QDL_K_ENS ? "members" : "state",
                                              b->n));
}

/* ------------------------------------------------------------------ ensemble losses */

/* qd.loss.mmd(A, B [, {grad=, method=}]) -> value [, G_A, G_B] */
static int l_mmd(lua_State *L)
{
    qdL_checknargs(L, 3);
    lua_settop(L, 3);   /* options at a fixed index, buffers above */
    qdl_reg *A = checkens(L, 1), *B = checkens(L, 2);
    samesize(L, A, B, 2);
    static const char *const opts[] = {"grad", "method", NULL};
    qdL_checkoptions(L, 3, opts);
    int grad = qdL_optbool(L, 3, "grad", 0), method = QD_MMD_AUTO;
    if (!lua_isnoneornil(L, 3)) {
        lua_getfield(L, 3, "method");
        if (!lua_isnil(L, -1)) {
            const char *m = lua_isstring(L, -1) ? lua_tostring(L, -1) : "";
            if (strcmp(m, "auto") == 0)
                method = QD_MMD_AUTO;
            else if (strcmp(m, "gram") == 0)
                method = QD_MMD_GRAM;
            else if (strcmp(m, "dm") == 0)
                method = QD_MMD_DM;
            else
                luaL_argerror(L, 3, "option 'method': \"auto\", \"gram\" or \"dm\" expected");
        }
        lua_pop(L, 1);
    }
    qd_c *GA = NULL, *GB = NULL;
    if (grad)
        grad_regs(L, A, B, &GA, &GB);
    double v;
    qd_err e;
    if (qd_loss_mmd_fid(A->a, A->count, B->a, B->count, A->n, method, &v, GA, GB, &e) != QD_OK)
        return qdL_raise(L, &e);
    lua_pushnumber(L, v);
    if (!grad)
        return 1;
    lua_rotate(L, -3, 1);   /* value, GA, GB */
    return 3;
}

/* weights option: table / qd.Vector of the right length, or nil */
static double *optweights(lua_State *L, int arg, const char *key, size_t n)
{
    if (lua_isnoneornil(L, arg))
        return NULL;
    lua_getfield(L, arg, key);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return NULL;
    }
    int idx = lua_gettop(L);
    size_t len;
    char what[64];
    snprintf(what, sizeof what, "weights '%s'", key);
    double *w = checkreal(L, idx, &len, what);   /* pushes the buffer */
    if (len != n)
        luaL_argerror(L, arg, lua_pushfstring(L, "option '%s': %d weights expected, got %d", key,
                                              (int)n, (int)len));
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(w[i] >= 0) || !isfinite(w[i]))
            luaL_argerror(L, arg, lua_pushfstring(L, "option '%s': weights >= 0 expected", key));
        s += w[i];
    }
    if (!(s > 0))
        luaL_argerror(L, arg, lua_pushfstring(L, "option '%s': positive total weight expected", key));
    lua_remove(L, idx);   /* keep the buffer (now on top), drop the option value */
    return w;
}

/* the plan as an N x M qd.Matrix; P buffer becomes its data */
static double *pushplan(lua_State *L, size_t N, size_t M)
{
    qdl_array *P = qdL_newarray(L, N, M, 0, 0);
    return P->data;
}

/* option 'warm' of qd.loss.wasserstein: the caller's table S keeping the assignment's
 * column prices between calls (S.v: real qd.Vector of N, S.n = N). Only used when the
 * problem is an assignment (N == M, no weights); then *v points at the prices (S.v, created
 * or replaced when missing or of another size, which means a cold solve) and *warm says
 * whether they are a start. Leaves the stack as it found it (S.v stays anchored in S,
 * which the options table anchors). */
/* __name of a userdata's metatable (e.g. "qd.Matrix"), else the Lua type name */
static const char *tname(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) == LUA_TUSERDATA && luaL_getmetafield(L, idx, "__name") != LUA_TNIL) {
        if (lua_type(L, -1) == LUA_TSTRING)
            return lua_tostring(L, -1);   /* left on the stack (the caller raises) */
        lua_pop(L, 1);
    }
    return luaL_typename(L, idx);
}

static void optwarm(lua_State *L, int arg, size_t N, size_t M, int weighted, double **v,
                    int *warm)
{
    *v = NULL;
    *warm = 0;
    if (lua_isnoneornil(L, arg))
        return;
    int top = lua_gettop(L);
    if (lua_getfield(L, arg, "warm") == LUA_TNIL) {
        lua_settop(L, top);
        return;
    }
    int S = top + 1;
    if (!lua_istable(L, S))
        luaL_argerror(L, arg, lua_pushfstring(L, "option 'warm': table expected, got %s",
                                              luaL_typename(L, S)));
    if (N != M || weighted) {   /* not an assignment: S is neither read nor written */
        lua_settop(L, top);
        return;
    }
    lua_getfield(L, S, "v");
    qdl_array *va = NULL;
    if (!lua_isnil(L, -1)) {
        va = luaL_testudata(L, -1, QDL_VECTOR);
        if (!va || va->freed || va->cplx)
            luaL_argerror(L, arg, lua_pushfstring(L, "option 'warm': field 'v' must be a real "
                                                  "qd.Vector or nil, got %s",
                                                  va ? (va->freed ? "a freed qd.Vector"
                                                                  : "a complex qd.Vector")
                                                     : tname(L, -1)));
    }
    lua_getfield(L, S, "n");
    int isint = lua_isinteger(L, -1);   /* a number with an integer value; not a string */
    if (!isint && lua_type(L, -1) == LUA_TNUMBER) {
        lua_Number x = lua_tonumber(L, -1);
        isint = x == floor(x) && fabs(x) < 1e15;
    }
    lua_Integer sn = isint ? (lua_Integer)lua_tonumber(L, -1) : 0;
    if (!isint && !lua_isnil(L, -1))
        luaL_argerror(L, arg, lua_pushfstring(L, "option 'warm': field 'n' must be an integer "
                                              "or nil, got %s", luaL_typename(L, -1)));
    if (va && isint && sn == (lua_Integer)N && va->rows == N && va->cols == 1) {
        *warm = 1;
    } else {   /* first call or size change: fresh prices, cold solve */
        va = qdL_newarray(L, N, 1, 0, 1);
        lua_setfield(L, S, "v");
        lua_pushinteger(L, (lua_Integer)N);
        lua_setfield(L, S, "n");
    }
    *v = va->data;
    lua_settop(L, top);
}

/* qd.loss.wasserstein(A, B [, {grad=, a=, b=, warm=, plan=}]) -> value, plan [, G_A, G_B]
 * (plan = false: nil instead of the N x M plan matrix, which a training loop never reads) */
static int l_wasserstein(lua_State *L)
{
    qdL_checknargs(L, 3);
    lua_settop(L, 3);   /* options at a fixed index, buffers above */
    qdl_reg *A = checkens(L, 1), *B = checkens(L, 2);
    samesize(L, A, B, 2);
    static const char *const opts[] = {"grad", "a", "b", "warm", "plan", NULL};
    qdL_checkoptions(L, 3, opts);
    int grad = qdL_optbool(L, 3, "grad", 0), wantplan = qdL_optbool(L, 3, "plan", 1);
    double *wa = optweights(L, 3, "a", A->count), *wb = optweights(L, 3, "b", B->count);
    double *wv;
    int warm;
    optwarm(L, 3, A->count, B->count, wa || wb, &wv, &warm);
    int top = lua_gettop(L);
    double *P = NULL;
    if (wantplan)
        P = pushplan(L, A->count, B->count);
    else
        lua_pushnil(L);
    qd_c *GA = NULL, *GB = NULL;
    if (grad)
        grad_regs(L, A, B, &GA, &GB);
    double v;
    qd_err e;
    if (qd_loss_wasserstein_warm(A->a, A->count, B->a, B->count, A->n, wa, wb, &v, P, GA, GB,
                                 wv, warm, &e))
        return qdL_raise(L, &e);
    lua_pushnumber(L, v);
    lua_rotate(L, top + 1, 1);   /* value, plan [, GA, GB] */
    return lua_gettop(L) - top;
}

static void sinkhorn_opts(lua_State *L, int arg, double *eps, size_t *max_iter, double *tol,
                          int *strict)
{
    *eps = qdL_optnum(L, arg, "eps", 0.05, 0, INFINITY, QDL_OPEN_LO);
    double mi = qdL_optnum(L, arg, "max_iter", 10000, 1, INFINITY, 0);
    if (mi != floor(mi) || mi > 1e12)
        luaL_argerror(L, arg, "option 'max_iter': integer 1..1e12 expected");
    *max_iter = (size_t)mi;
    *tol = qdL_optnum(L, arg, "tol", 1e-9, 0, INFINITY, QDL_OPEN_LO);
    if (strict)
        *strict = qdL_optbool(L, arg, "strict", 1);
}

/* qd.loss.sinkhorn(A, B [, {eps=0.05, max_iter=10000, tol=1e-9, strict=true, grad=, a=, b=}])
 * -> value, plan [, G_A, G_B] */
static int l_sinkhorn(lua_State *L)
{
    qdL_checknargs(L, 3);
    lua_settop(L, 3);   /* options at a fixed index, buffers above */
    qdl_reg *A = checkens(L, 1), *B = checkens(L, 2);
    samesize(L, A, B, 2);
    static const char *const opts[] = {"grad", "a", "b", "eps", "max_iter", "tol", "strict", NULL};
    qdL_checkoptions(L, 3, opts);
    int grad = qdL_optbool(L, 3, "grad", 0), strict;
    double eps, tol;
    size_t max_iter;
    sinkhorn_opts(L, 3, &eps, &max_iter, &tol, &strict);
    double *wa = optweights(L, 3, "a", A->count), *wb = optweights(L, 3, "b", B->count);
    int top = lua_gettop(L);
    double *P = pushplan(L, A->count, B->count);
    qd_c *GA = NULL, *GB = NULL;
    if (grad)
        grad_regs(L, A, B, &GA, &GB);
    double v;
    qd_err e;
    qd_sinkhorn_info info;
    if (qd_loss_sinkhorn(A->a, A->count, B->a, B->count, A->n, wa, wb, eps, max_iter, tol, &v,
                         P, &info, GA, GB, &e))
        return qdL_raise(L, &e);
    if (strict && !info.converged) {
        char msg[256];
        snprintf(msg, sizeof msg, "sinkhorn did not converge in %zu iterations (marginal error %.3g > "
                 "tol %.3g); raise max_iter or eps, or pass strict=false", info.iters, info.err, tol);
        return luaL_error(L, "%s", msg);
    }
    lua_pushnumber(L, v);
    lua_rotate(L, top + 1, 1);
    return lua_gettop(L) - top;
}

/* ------------------------------------------------------------------ qd.ot */

static double *checkcost(lua_State *L, int arg, size_t *N, size_t *M)
{
    qdl_array *C = qdL_testarray(L, arg);
    if (!C)
        typeerr(L, arg, "cost matrix (qd.Matrix)");
    if (C->cplx)
        luaL_argerror(L, arg, "real cost matrix expected, got a complex one");
    *N = C->rows;
    *M = C->cols;
    for (size_t i = 0; i < C->rows * C->cols; i++)
        if (!isfinite(((double *)C->data)[i]))
            luaL_argerror(L, arg, lua_pushfstring(L, "finite costs expected (entry %d, %d)",
                                                  (int)(i % C->rows + 1), (int)(i / C->rows + 1)));
    return C->data;
}

/* qd.ot.exact(C [, {a=, b=}]) -> cost, plan */
static int l_ot_exact(lua_State *L)
{
    qdL_checknargs(L, 2);
    lua_settop(L, 2);   /* options at a fixed index, buffers above */
    size_t N, M;
    double *C = checkcost(L, 1, &N, &M);
    static const char *const opts[] = {"a", "b", NULL};
    qdL_checkoptions(L, 2, opts);
    double *wa = optweights(L, 2, "a", N), *wb = optweights(L, 2, "b", M);
    double *P = pushplan(L, N, M), v;
    qd_err e;
    if (qd_ot_exact(C, N, M, wa, wb, P, &v, &e))
        return qdL_raise(L, &e);
    lua_pushnumber(L, v);
    lua_rotate(L, -2, 1);
    return 2;
}

/* qd.ot.assign(C) -> cost, perm (perm[i] = column of row i, 1-based) */
static int l_ot_assign(lua_State *L)
{
    qdL_checknargs(L, 1);
    lua_settop(L, 1);   /* options at a fixed index, buffers above */
    size_t N, M;
    double *C = checkcost(L, 1, &N, &M);
    if (N != M)
        return luaL_argerror(L, 1, lua_pushfstring(L, "square cost matrix expected, got %dx%d", (int)N, (int)M));
    size_t *perm = tmpbuf(L, sizeof(size_t) * N);
    double v;
    qd_err e;
    if (qd_ot_assign(C, N, perm, &v, &e))
        return qdL_raise(L, &e);
    lua_pushnumber(L, v);
    lua_createtable(L, (int)N, 0);
    for (size_t i = 0; i < N; i++) {
        lua_pushinteger(L, (lua_Integer)perm[i] + 1);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 2;
}

/* qd.ot.sinkhorn(C [, {eps=, max_iter=, tol=, a=, b=}]) -> value, plan, info */
static int l_ot_sinkhorn(lua_State *L)
{
    qdL_checknargs(L, 2);
    lua_settop(L, 2);   /* options at a fixed index, buffers above */
    size_t N, M;
    double *C = checkcost(L, 1, &N, &M);
    static const char *const opts[] = {"a", "b", "eps", "max_iter", "tol", NULL};
    qdL_checkoptions(L, 2, opts);
    double eps, tol;
    size_t max_iter;
    sinkhorn_opts(L, 2, &eps, &max_iter, &tol, NULL);
    double *wa = optweights(L, 2, "a", N), *wb = optweights(L, 2, "b", M);
    int top = lua_gettop(L);
    double *P = pushplan(L, N, M), v;
    qd_err e;
    qd_sinkhorn_info info;
    if (qd_ot_sinkhorn(C, N, M, wa, wb, eps, max_iter, tol, P, &v, &info, &e))
        return qdL_raise(L, &e);
    lua_pushnumber(L, v);
    lua_rotate(L, top + 1, 1);
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)info.iters);
    lua_setfield(L, -2, "iters");
    lua_pushnumber(L, info.err);
    lua_setfield(L, -2, "err");
    lua_pushboolean(L, info.converged);
    lua_setfield(L, -2, "converged");
    lua_pushnumber(L, info.cost);
    lua_setfield(L, -2, "cost");
    return 3;
}

/* ------------------------------------------------------------------ Born-machine losses */

/* sigma option: number or non-empty list of numbers > 0 (required) */
static double *checksigma(lua_State *L, int arg, int *ns)
{
    if (lua_isnoneornil(L, arg))
        luaL_argerror(L, arg, "options table with 'sigma' (bandwidth or list of bandwidths) expected");
    lua_getfield(L, arg, "sigma");
    double *s = NULL;
    if (lua_type(L, -1) == LUA_TNUMBER) {
        s = tmpbuf(L, sizeof(double));
        s[0] = lua_tonumber(L, -2);
        *ns = 1;
    } else if (lua_istable(L, -1)) {
        lua_Integer k = luaL_len(L, -1);
        if (k < 1 || k > 64)
            luaL_argerror(L, arg, "option 'sigma': 1..64 bandwidths expected");
        s = tmpbuf(L, sizeof(double) * (size_t)k);
        for (lua_Integer i = 1; i <= k; i++) {
            if (lua_geti(L, -2, i) != LUA_TNUMBER)
                luaL_argerror(L, arg, "option 'sigma': list of numbers expected");
            s[i - 1] = lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
        *ns = (int)k;
    } else {
        luaL_argerror(L, arg, lua_pushfstring(L, "option 'sigma': number or list of numbers expected, got %s",
                                              luaL_typename(L, -1)));
    }
    for (int i = 0; i < *ns; i++)
        if (!(s[i] > 0) || !isfinite(s[i]))
            luaL_argerror(L, arg, lua_pushfstring(L, "option 'sigma': bandwidths > 0 expected, got %f", s[i]));
    lua_remove(L, -2);   /* the option value; keep the buffer */
    return s;
}

/* p and q (arguments 1 and 2): probability vectors over n-bit strings, the same length;
 * returns n (their data: rv_data, after the options and results) */
static int rv_bits_pair(lua_State *L, rvec *vp, rvec *vq)
{
    rv_len(L, 1, vp, "probability vector");
    rv_len(L, 2, vq, "probability vector");
    int n = rv_pow2(L, vp);
    rv_pow2(L, vq);
    rv_samelen(L, vp, vq);
    return n;
}

/* qd.loss.mmd_bits(p, q, {sigma=, method="exact"|"pauli", grad=}) -> value [, dL/dp] */
static int l_mmd_bits(lua_State *L)
{
    qdL_checknargs(L, 3);
    lua_settop(L, 3);   /* options at a fixed index, buffers above */
    rvec vp, vq;
    int n = rv_bits_pair(L, &vp, &vq);
    static const char *const opts[] = {"sigma", "method", "grad", NULL};
    qdL_checkoptions(L, 3, opts);
    int ns, pauli = 0;
    double *sig = checksigma(L, 3, &ns);
    int grad = qdL_optbool(L, 3, "grad", 0);
    lua_getfield(L, 3, "method");
    if (!lua_isnil(L, -1)) {
        const char *m = lua_isstring(L, -1) ? lua_tostring(L, -1) : "";
        if (strcmp(m, "pauli") == 0)
            pauli = 1;
        else if (strcmp(m, "exact") != 0)
            luaL_argerror(L, 3, "option 'method': \"exact\" or \"pauli\" expected");
    }
    lua_pop(L, 1);
    double *g = grad ? qdL_newarray(L, vp.len, 1, 0, 1)->data : NULL, v;
    const double *p = rv_data(L, &vp, RV_PROB), *q = rv_data(L, &vq, RV_PROB);
    qd_err e;
    qd_status st = pauli ? qd_loss_mmd_bits_pauli(p, q, n, sig, ns, &v, g, NULL, &e)
                         : qd_loss_mmd_bits(p, q, n, sig, ns, &v, g, &e);
    if (st)
        return qdL_raise(L, &e);
    lua_pushnumber(L, v);
    return value_then_grad(L, grad);
}

/* qd.loss.mmd_bits_orders(p, q, {sigma=}) -> {c_0, c_1, ..., c_n}: contribution of the
 * Pauli-Z strings of each weight k (entry k+1) */
static int l_mmd_bits_orders(lua_State *L)
{
    qdL_checknargs(L, 3);
    lua_settop(L, 3);   /* options at a fixed index, buffers above */
    rvec vp, vq;
    int n = rv_bits_pair(L, &vp, &vq);
    static const char *const opts[] = {"sigma", NULL};
    qdL_checkoptions(L, 3, opts);
    int ns;
    double *sig = checksigma(L, 3, &ns);
    double *ord = tmpbuf(L, sizeof(double) * (size_t)(n + 1)), v;
    lua_createtable(L, n + 1, 0);
    const double *p = rv_data(L, &vp, RV_PROB), *q = rv_data(L, &vq, RV_PROB);
    qd_err e;
    if (qd_loss_mmd_bits_pauli(p, q, n, sig, ns, &v, NULL, ord, &e))
        return qdL_raise(L, &e);
    for (int k = 0; k <= n; k++) {
        lua_pushnumber(L, ord[k]);
        lua_rawseti(L, -2, k + 1);
    }
    return 1;
}

/* parse a bitstring of '0'/'1' (qubit 0 first = most significant) */
static int parsebits(const char *s, size_t len, uint64_t *out)
{
    if (len < 1 || len > 64)
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '0' && s[i] != '1')
            return 0;
        v = (v << 1) | (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 1;
}

/* samples: list of 0-based basis indices or bitstrings, or a counts table
 * {["0101"] = c, ...} (as from obj:sample). Pushes two buffers; returns entries. */
static size_t checksamples(lua_State *L, int arg, uint64_t **x, double **c)
{
    if (!lua_istable(L, arg))
        typeerr(L, arg, "samples (list of basis indices or bitstrings, or a counts table)");
    lua_Integer n = qdL_checklen(L, arg, arg, (lua_Integer)1 << 40, "samples");
    size_t cnt = 0;
    if (n == 0) {   /* counts table */
        lua_pushnil(L);
        while (lua_next(L, arg)) {
            cnt++;
            lua_pop(L, 1);
        }
    } else {
        cnt = (size_t)n;
    }
    if (cnt == 0)
        luaL_argerror(L, arg, "non-empty samples expected");
    /* a list is read into buffers that grow with what is actually there: a length from
     * __len is not trusted with a big allocation before its entries are seen */
    size_t cap = n == 0 || cnt <= ((size_t)1 << 16) ? cnt : ((size_t)1 << 16);
    *x = tmpbuf(L, sizeof(uint64_t) * cap);
    const int sx = lua_gettop(L);
    *c = tmpbuf(L, sizeof(double) * cap);
    const int sc = lua_gettop(L);
    size_t k = 0;
    double total = 0;
    if (n == 0) {
        lua_pushnil(L);
        while (lua_next(L, arg)) {
            if (k >= cnt)   /* the table grew since it was counted (a finaliser ran) */
                luaL_argerror(L, arg, "counts table changed while being read");
            size_t len;
            const char *s = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &len) : NULL;
            if (!s || !parsebits(s, len, &(*x)[k]))
                luaL_argerror(L, arg, "counts table with bitstring keys (\"0101\") expected");
            if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) >= 0))
                luaL_argerror(L, arg, "counts >= 0 expected as values of the counts table");
            (*c)[k] = lua_tonumber(L, -1);
            total += (*c)[k++];
            lua_pop(L, 1);
        }
    } else {
        for (lua_Integer i = 1; i <= n; i++) {
            if (k == cap) {   /* grow (before the entry is pushed), in the buffers' own slots */
                size_t nc = 2 * cap < cnt ? 2 * cap : cnt;
                *x = tmpbuf_grow(L, sx, *x, sizeof(uint64_t) * k, sizeof(uint64_t) * nc);
                *c = tmpbuf_grow(L, sc, *c, sizeof(double) * k, sizeof(double) * nc);
                cap = nc;
            }
            int t = lua_geti(L, arg, i);
            int isint = 0;
            lua_Integer v = lua_tointegerx(L, -1, &isint);
            size_t len = 0;
            const char *str = t == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
            if (t == LUA_TNUMBER && isint && v >= 0)
                (*x)[k] = (uint64_t)v;
            else if (str && parsebits(str, len, &(*x)[k]))
                ;
            else
                luaL_argerror(L, arg, lua_pushfstring(L, "basis index >= 0 or bitstring expected at position %d",
                                                      (int)i));
            (*c)[k++] = 1;
            total += 1;
            lua_pop(L, 1);
        }
    }
    if (total < 2)
        luaL_argerror(L, arg, "at least 2 samples expected (the unbiased estimate pairs distinct draws)");
    return cnt;
}

/* qd.loss.mmd_bits_samples(x, y, {sigma=}) -> unbiased estimate of MMD^2 */
static int l_mmd_bits_samples(lua_State *L)
{
    qdL_checknargs(L, 3);
    lua_settop(L, 3);   /* options at a fixed index, buffers above */
    uint64_t *x, *y;
    double *cx, *cy;
    size_t nx = checksamples(L, 1, &x, &cx), ny = checksamples(L, 2, &y, &cy);
    static const char *const opts[] = {"sigma", NULL};
    qdL_checkoptions(L, 3, opts);
    int ns;
    double *sig = checksigma(L, 3, &ns);
    lua_pushnumber(L, qd_loss_mmd_bits_samples(x, cx, nx, y, cy, ny, sig, ns));
    return 1;
}

static int kl_like(lua_State *L, int xent)
{
    qdL_checknargs(L, 3);
    lua_settop(L, 3);   /* options at a fixed index, buffers above */
    rvec vp, vq;
    rv_len(L, 1, &vp, "probability vector");
    rv_len(L, 2, &vq, "probability vector");
    rv_samelen(L, &vp, &vq);
    static const char *const opts[] = {"eps", "grad", NULL};
    qdL_checkoptions(L, 3, opts);
    double eps = qdL_optnum(L, 3, "eps", 1e-12, 0, INFINITY, QDL_OPEN_LO);
    int grad = qdL_optbool(L, 3, "grad", 0);
    double *g = grad ? qdL_newarray(L, vp.len, 1, 0, 1)->data : NULL;
    const double *p = rv_data(L, &vp, RV_PROB), *q = rv_data(L, &vq, RV_PROB);
    double v = xent ? qd_loss_xent(p, q, vp.len, eps, g) : qd_loss_kl(p, q, vp.len, eps, g);
    lua_pushnumber(L, v);
    return value_then_grad(L, grad);
}

/* qd.loss.kl(p, q [, {eps=1e-12, grad=}]) -> KL(q || p) [, dL/dp]  (p model, q target) */
static int l_kl(lua_State *L)
{
    return kl_like(L, 0);
}

/* qd.loss.cross_entropy(p, q [, {eps=, grad=}]) -> -sum q log p [, dL/dp] */
static int l_xent(lua_State *L)
{
    return kl_like(L, 1);
}

/* qd.loss.local_fidelity(phi [, {grad=}]) -> 1 - (1/n) sum_j P(qubit j = 0) [, G] */
static int l_local_fid(lua_State *L)
{
    qdL_checknargs(L, 2);
    lua_settop(L, 2);   /* options at a fixed index, buffers above */
    qdl_reg *s = qdL_checkkind(L, 1, QDL_K_STATE);
    static const char *const opts[] = {"grad", NULL};
    qdL_checkoptions(L, 2, opts);
    int grad = qdL_optbool(L, 2, "grad", 0);
    qd_c *G = grad ? qdL_newreg(L, QDL_K_STATE, s->n, 1)->a : NULL;
    lua_pushnumber(L, qd_loss_local_fid(s->a, s->n, G));
    return value_then_grad(L, grad);
}

/* qd.loss.global_fidelity(psi, target [, {grad=}]) -> 1 - |<t|psi>|^2 [, G_psi];
 * target a qd.State or a probability vector q (|t> = sum_x sqrt(q_x) |x>) */
static int l_global_fid(lua_State *L)
{
    qdL_checknargs(L, 3);
    lua_settop(L, 3);   /* options at a fixed index, buffers above */
    qdl_reg *s = qdL_checkkind(L, 1, QDL_K_STATE);
    static const char *const opts[] = {"grad", NULL};
    qdL_checkoptions(L, 3, opts);
    int grad = qdL_optbool(L, 3, "grad", 0);
    size_t D = (size_t)1 << s->n;
    const qd_c *t;
    qdl_reg *ts = qdL_testkind(L, 2, QDL_K_STATE);
    if (ts) {
        if (!ts->a)
            return luaL_argerror(L, 2, "qd.State has been freed");
        samesize(L, s, ts, 2);
        t = ts->a;
    } else {
        if (!lua_istable(L, 2) && !qdL_testarray(L, 2))
            return typeerr(L, 2, "qd.State or probability vector");
        rvec vq;
        rv_len(L, 2, &vq, "probability vector");
        rv_pow2(L, &vq);
        if (vq.len != D)
            return luaL_argerror(L, 2, lua_pushfstring(L, "probability vector of length %d expected, got %d",
                                                       (int)D, (int)vq.len));
        qd_c *tt = tmpbuf(L, sizeof(qd_c) * D);
        const double *q = rv_data(L, &vq, RV_PROB);
        for (size_t i = 0; i < D; i++)
            tt[i] = sqrt(q[i]);
        t = tt;
    }
    qd_c *G = grad ? qdL_newreg(L, QDL_K_STATE, s->n, 1)->a : NULL;
    lua_pushnumber(L, qd_loss_infid_pp(s->a, t, s->n, G, NULL));
    return value_then_grad(L, grad);
}

/* qd.loss.born_vjp(psi, dLdp) -> G = dL/d conj(psi) (a State, dLdp .* psi): the Born-rule
 * chain rule that lets c:grad / c:vjp train on any loss of psi's probabilities */
static int l_born_vjp(lua_State *L)
{
    qdL_checknargs(L, 2);
    qdl_reg *s = qdL_checkkind(L, 1, QDL_K_STATE);
    size_t D = (size_t)1 << s->n;
    rvec vg;
    rv_len(L, 2, &vg, "gradient dL/dp");
    if (vg.len != D)
        luaL_argerror(L, 2, lua_pushfstring(L, "gradient dL/dp of length %d expected, got %d", (int)D, (int)vg.len));
    qd_c *G = qdL_newreg(L, QDL_K_STATE, s->n, 1)->a;
    const double *g = rv_data(L, &vg, RV_FINITE);
    if (!s->a)
        return luaL_argerror(L, 1, "qd.State has been freed");
    qd_born_vjp(s->a, g, D, G);
    return 1;
}

/* qd.loss.born_shift(dLdp, p_plus, p_minus) -> sum dLdp (p_plus - p_minus) / 2: dL/dtheta of a
 * loss of the probabilities by the parameter-shift rule (probabilities at theta +- pi/2) */
static int l_born_shift(lua_State *L)
{
    qdL_checknargs(L, 3);
    rvec vg, vpp, vpm;
    rv_len(L, 2, &vpp, "probability vector");
    rv_len(L, 3, &vpm, "probability vector");
    rv_samelen(L, &vpp, &vpm);
    rv_len(L, 1, &vg, "gradient dL/dp");
    if (vg.len != vpp.len)
        luaL_argerror(L, 1, lua_pushfstring(L, "gradient dL/dp of length %d expected, got %d", (int)vpp.len,
                                            (int)vg.len));
    const double *pp = rv_data(L, &vpp, RV_PROB), *pm = rv_data(L, &vpm, RV_PROB);
    const double *g = rv_data(L, &vg, RV_FINITE);
    lua_pushnumber(L, qd_born_shift(g, pp, pm, vpp.len));
    return 1;
}

/* ------------------------------------------------------------------ state losses */

static qdl_reg *checkstate_or_dm(lua_State *L, int arg)
{
    qdl_reg *r = qdL_testkind(L, arg, QDL_K_STATE);
    if (!r)
        r = qdL_testkind(L, arg, QDL_K_DM);
    if (!r)
        typeerr(L, arg, "qd.State or qd.DensityMatrix");
    if (!r->a)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s has been freed", qdL_kindname(r->kind)));
    return r;
}

/* density matrix of a register (a stack buffer for states) */
static qd_c *as_dm(lua_State *L, qdl_reg *r)
{
    if (r->kind == QDL_K_DM)
        return r->a;
    size_t D = (size_t)1 << r->n;
    qd_c *rho = tmpbuf(L, sizeof(qd_c) * D * D);
    qd_dm_from_state(r->a, r->n, rho);
    return rho;
}

/* gradient wrt a register from a density-matrix gradient Gr: DM -> copy, State -> 2 Gr psi */
static void push_grad(lua_State *L, qdl_reg *r, const qd_c *Gr)
{
    size_t D = (size_t)1 << r->n;
    if (r->kind == QDL_K_DM) {
        qdl_reg *o = qdL_newreg(L, QDL_K_DM, r->n, 1);
        memcpy(o->a, Gr, sizeof(qd_c) * D * D);
        return;
    }
    qdl_reg *o = qdL_newreg(L, QDL_K_STATE, r->n, 1);
    qd_la_zgemm('N', 'N', D, 1, D, 2.0, Gr, D, r->a, D, 0.0, o->a, D);
}

enum { SL_INFID, SL_TRACE, SL_HS, SL_SUPER };

static int state_loss(lua_State *L, int which)
{
    qdL_checknargs(L, 3);
    lua_settop(L, 3);   /* options at a fixed index, buffers above */
    qdl_reg *a = checkstate_or_dm(L, 1), *b = checkstate_or_dm(L, 2);
    samesize(L, a, b, 2);
    static const char *const opts[] = {"grad", "wrt", NULL};
    qdL_checkoptions(L, 3, opts);
    int grad = qdL_optbool(L, 3, "grad", 0);
    double wv = qdL_optnum(L, 3, "wrt", 0, 1, 2, 0);   /* absent: both gradients; 1 / 2: that one only */
    if (wv != 0 && wv != 1 && wv != 2)
        return luaL_argerror(L, 3, "option 'wrt': 1 or 2 expected");
    int wrt = (int)wv;
    if (wrt && !grad)
        return luaL_argerror(L, 3, "option 'wrt' needs grad = true");
    int n = a->n;
    size_t D = (size_t)1 << n;
    int top = lua_gettop(L);
    double v = 0;
    qd_err e;
    if (which == SL_INFID && a->kind == QDL_K_STATE && b->kind == QDL_K_STATE) {
        qd_c *Ga = grad ? qdL_newreg(L, QDL_K_STATE, n, 1)->a : NULL;
        qd_c *Gb = grad ? qdL_newreg(L, QDL_K_STATE, n, 1)->a : NULL;
        v = qd_loss_infid_pp(a->a, b->a, n, Ga, Gb);
    } else if (which == SL_INFID && (a->kind == QDL_K_STATE) != (b->kind == QDL_K_STATE)) {
        int swap = a->kind != QDL_K_STATE;
        qdl_reg *ps = swap ? b : a, *pr = swap ? a : b;
        qd_c *Gs = NULL, *Gr = NULL;
        if (grad) {
            qd_c *g1 = qdL_newreg(L, a->kind, n, 1)->a, *g2 = qdL_newreg(L, b->kind, n, 1)->a;
            Gs = swap ? g2 : g1;
            Gr = swap ? g1 : g2;
        }
        v = qd_loss_infid_pd(ps->a, pr->a, n, Gs, Gr);
    } else {
        qd_c *ra = as_dm(L, a), *rb = as_dm(L, b);
        qd_c *Ga = grad && wrt != 2 ? tmpbuf(L, sizeof(qd_c) * D * D) : NULL;
        qd_c *Gb = grad && wrt != 1 ? tmpbuf(L, sizeof(qd_c) * D * D) : NULL;
        qd_status st = QD_OK;
        switch (which) {
        case SL_INFID: st = qd_loss_infid_dd(ra, rb, n, &v, Ga, Gb, &e); break;
        case SL_TRACE: st = qd_loss_trace_dist(ra, rb, n, &v, Ga, Gb, &e); break;
        case SL_HS: v = qd_loss_hs(ra, rb, n, Ga, Gb); break;
        default: v = qd_loss_superfid(ra, rb, n, Ga, Gb); break;
        }
        if (st)
            return qdL_raise(L, &e);
        if (grad) {
            int ng = (Ga != NULL) + (Gb != NULL);
            if (Ga)
                push_grad(L, a, Ga);
            if (Gb)
                push_grad(L, b, Gb);
            lua_rotate(L, top + 1, ng);     /* grads below the temporaries */
            lua_settop(L, top + ng);
        } else {
            lua_settop(L, top);
        }
    }
    if (wrt)   /* the state forms made both: keep the one asked for */
        while (lua_gettop(L) > top + 1) {
            lua_remove(L, wrt == 1 ? top + 2 : top + 1);
        }
    lua_pushnumber(L, v);
    lua_rotate(L, top + 1, 1);
    return lua_gettop(L) - top;
}

/* qd.loss.infidelity(a, b [, {grad=}]) -> 1 - F [, G_a, G_b] (pure, pure-mixed, Uhlmann) */
static int l_infid(lua_State *L)
{
    return state_loss(L, SL_INFID);
}

static int l_trace(lua_State *L)
{
    return state_loss(L, SL_TRACE);
}

static int l_hs(lua_State *L)
{
    return state_loss(L, SL_HS);
}

static int l_superfid(lua_State *L)
{
    return state_loss(L, SL_SUPER);
}

/* qd.superfidelity(a, b) -> Tr(rho sigma) + sqrt((1 - Tr rho^2)(1 - Tr sigma^2)) */
static int l_superfidelity(lua_State *L)
{
    qdL_checknargs(L, 2);
    lua_settop(L, 2);   /* options at a fixed index, buffers above */
    qdl_reg *a = checkstate_or_dm(L, 1), *b = checkstate_or_dm(L, 2);
    samesize(L, a, b, 2);
    qd_c *ra = as_dm(L, a), *rb = as_dm(L, b);
    lua_pushnumber(L, qd_superfidelity(ra, rb, a->n));
    return 1;
}

/* qd.loss.mse(x, y [, {grad=}]) -> mean |x_i - y_i|^2 [, G_x, G_y]. Real qd.Vectors:
 * dL/dx = 2(x - y)/len; complex vectors, States, DensityMatrices, Ensembles: Wirtinger
 * G_x = (x - y)/len (same type as x). */
static int l_mse(lua_State *L)
{
    qdL_checknargs(L, 3);
    lua_settop(L, 3);   /* options at a fixed index, buffers above */
    static const char *const opts[] = {"grad", NULL};
    qdL_checkoptions(L, 3, opts);
    int grad = qdL_optbool(L, 3, "grad", 0);
    qdl_array *xa = qdL_testarray(L, 1);
    if (xa) {
        qdl_array *ya = qdL_testarray(L, 2);
        if (!ya)
            return typeerr(L, 2, "qd.Vector or qd.Matrix");
        if (xa->rows != ya->rows || xa->cols != ya->cols)
            return luaL_argerror(L, 2, lua_pushfstring(L, "%dx%d array expected, got %dx%d", (int)xa->rows,
                                                       (int)xa->cols, (int)ya->rows, (int)ya->cols));
        size_t len = xa->rows * xa->cols;
        int cplx = xa->cplx || ya->cplx, vec = luaL_testudata(L, 1, QDL_VECTOR) != NULL;
        void *gx = NULL, *gy = NULL;
        if (grad) {
            gx = qdL_newarray(L, xa->rows, xa->cols, cplx, vec)->data;
            gy = qdL_newarray(L, xa->rows, xa->cols, cplx, vec)->data;
        }
        double s = 0;
        for (size_t i = 0; i < len; i++) {
            qd_c z = qdL_array_get(xa, i) - qdL_array_get(ya, i);
            s += creal(z) * creal(z) + cimag(z) * cimag(z);
            if (grad && cplx) {
                ((qd_c *)gx)[i] = z / (double)len;
                ((qd_c *)gy)[i] = -z / (double)len;
            } else if (grad) {
                ((double *)gx)[i] = 2 * creal(z) / (double)len;
                ((double *)gy)[i] = -2 * creal(z) / (double)len;
            }
        }
        lua_pushnumber(L, s / (double)len);
        if (grad) {
            lua_rotate(L, -3, 1);
            return 3;
        }
        return 1;
    }
    qdl_reg *x = qdL_checkreg(L, 1), *y = qdL_checkreg(L, 2);
    if (x->kind != y->kind || x->n != y->n || x->count != y->count)
        return luaL_argerror(L, 2, lua_pushfstring(L, "%s of the same shape as argument #1 expected",
                                                   qdL_kindname(x->kind)));
    size_t len = (x->kind == QDL_K_DM ? ((size_t)1 << x->n) : 1) * ((size_t)1 << x->n) * x->count;
    qd_c *gx = grad ? qdL_newreg(L, x->kind, x->n, x->count)->a : NULL;
    qd_c *gy = grad ? qdL_newreg(L, x->kind, x->n, x->count)->a : NULL;
    double s = 0;
    for (size_t i = 0; i < len; i++) {
        qd_c z = x->a[i] - y->a[i];
        s += creal(z) * creal(z) + cimag(z) * cimag(z);
        if (grad) {
            gx[i] = z / (double)len;
            gy[i] = -z / (double)len;
        }
    }
    lua_pushnumber(L, s / (double)len);
    if (grad) {
        lua_rotate(L, -3, 1);
        return 3;
    }
    return 1;
}

void qdL_open_loss(lua_State *L)
{
    static const luaL_Reg loss[] = {
        {"mmd", l_mmd}, {"wasserstein", l_wasserstein}, {"sinkhorn", l_sinkhorn},
        {"mmd_bits", l_mmd_bits}, {"mmd_bits_orders", l_mmd_bits_orders},
        {"mmd_bits_samples", l_mmd_bits_samples}, {"kl", l_kl}, {"cross_entropy", l_xent},
        {"local_fidelity", l_local_fid}, {"global_fidelity", l_global_fid},
        {"born_vjp", l_born_vjp}, {"born_shift", l_born_shift},
        {"infidelity", l_infid}, {"trace_distance", l_trace}, {"hilbert_schmidt", l_hs},
        {"superfidelity", l_superfid}, {"mse", l_mse}, {NULL, NULL}};
    luaL_newlib(L, loss);
    lua_setfield(L, -2, "loss");
    static const luaL_Reg ot[] = {
        {"exact", l_ot_exact}, {"assign", l_ot_assign}, {"sinkhorn", l_ot_sinkhorn}, {NULL, NULL}};
    luaL_newlib(L, ot);
    lua_setfield(L, -2, "ot");
    lua_pushcfunction(L, l_superfidelity);
    lua_setfield(L, -2, "superfidelity");
}
