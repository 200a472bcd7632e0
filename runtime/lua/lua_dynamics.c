/* lua_dynamics.c — bindings of dynamics.c: qd.lindblad(rho, H, jumps, t [, opts]) and
 * rho:evolve(H, t, {jumps = {...}}) (adaptive Dormand-Prince on density matrices), and
 * qd.sse(obj, opts) (stochastic Schroedinger trajectories of a State or Ensemble, with
 * measurement records, tracked observables and a Lua feedback function giving the
 * Hamiltonian's coefficients per step). Operators are qd.PauliSum (lua_pauli.c) or Pauli
 * strings. */
#include "lua_util.h"
#include "qd_dynamics.h"
#include <math.h>
#include <stdio.h>
#include <string.h>


#define QDL_LINDBLAD_MAX_QUBITS 10
#define QDL_SSE_MAX_STEPS 1000000000   /* time steps of one qd.sse call */
#define QDL_SSE_MAX_WORK 1e10          /* steps x members of one qd.sse call */

static int typeerror(lua_State *L, int arg, const char *expected)
{
    const char *got = luaL_getmetafield(L, arg, "__name") == LUA_TSTRING ? lua_tostring(L, -1)
                                                                        : luaL_typename(L, arg);
    return luaL_argerror(L, arg, lua_pushfstring(L, "%s expected, got %s", expected, got));
}

/* list of operators (table at arg) -> array of structs in a pushed scratch userdata.
 * Each entry a PauliSum or string on n qubits. Returns the count; *out the array. */
static size_t oplist(lua_State *L, int arg, int tidx, int n, const char *what, qd_pauli_sum **out)
{
    tidx = lua_absindex(L, tidx);
    if (!lua_istable(L, tidx) || luaL_testudata(L, tidx, "qd.PauliSum"))
        luaL_argerror(L, arg, lua_pushfstring(L, "%s: table of qd.PauliSum (or Pauli strings) expected, got %s", what,
                                              luaL_testudata(L, tidx, "qd.PauliSum") ? "a single qd.PauliSum (wrap it in {})"
                                                                                     : luaL_typename(L, tidx)));
    /* the length is read once and bounded; every entry is read once into arr */
    lua_Integer m = luaL_len(L, tidx);
    if (m < 0 || m > 4096)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s: 0..4096 operators expected, got %I", what, (LUAI_UACINT)m));
    qd_pauli_sum *arr = lua_newuserdatauv(L, sizeof(qd_pauli_sum) * (size_t)(m > 0 ? m : 1), (int)(m > 0 ? m : 1));
    int ai = lua_gettop(L);
    for (lua_Integer i = 1; i <= m; i++) {
        lua_geti(L, tidx, i);
        char label[128];
        snprintf(label, sizeof label, "bad argument #%d (%s, entry %d)", arg, what, (int)i);
        qd_pauli_sum *p = qdL_topauli(L, -1, n, label);
        arr[i - 1] = *p;
        /* keep the (possibly temporary) operator alive with the array */
        lua_setiuservalue(L, ai, (int)i);
        lua_settop(L, ai);
    }
    *out = arr;
    return (size_t)m;
}

/* number option in (lo, hi) with default */
static size_t optcount(lua_State *L, int arg, const char *key, size_t def, int required)
{
    if (!lua_istable(L, arg))
        return def;
    int t = lua_getfield(L, arg, key);
    size_t v = def;
    if (t == LUA_TNIL) {
        if (required)
            luaL_argerror(L, arg, lua_pushfstring(L, "option '%s' (an integer >= 1) expected, got no value", key));
    } else {
        int isint = 0;
        lua_Integer x = lua_tointegerx(L, -1, &isint);
        if (!isint || x < 1)
            luaL_argerror(L, arg, lua_pushfstring(L, "option '%s': integer >= 1 expected, got %s", key,
                                                  luaL_tolstring(L, -1, NULL)));
        v = (size_t)x;
    }
    lua_pop(L, 1);
    return v;
}

/* ------------------------------------------------------------------ Lindblad */

/* The common part: rho (reg), H at hidx (nil allowed), jumps table at jidx (nil allowed),
 * times at tidx, options at oidx. inplace: evolve rho itself to the last time and return
 * it; else return new DMs. Pushes results (object or table, info). */
/* the output times at tidx: one number, or (not in place) a table of increasing times;
 * in a GC-managed buffer left on the stack */
static double *lindblad_times(lua_State *L, int tidx, int inplace, size_t *nt)
{
    double *ts;
    if (lua_type(L, tidx) == LUA_TNUMBER) {
        *nt = 1;
        ts = lua_newuserdatauv(L, sizeof(double), 0);
        ts[0] = lua_tonumber(L, tidx);
        if (!(ts[0] >= 0) || !isfinite(ts[0]))
            luaL_argerror(L, tidx, "finite time >= 0 expected");
    } else if (lua_istable(L, tidx) && !inplace) {
        lua_Integer m = luaL_len(L, tidx);
        if (m < 1 || m > 100000)
            luaL_argerror(L, tidx, "1..100000 output times expected");
        *nt = (size_t)m;
        ts = lua_newuserdatauv(L, sizeof(double) * *nt, 0);
        for (size_t i = 0; i < *nt; i++) {
            lua_geti(L, tidx, (lua_Integer)i + 1);
            int isnum = 0;
            ts[i] = lua_tonumberx(L, -1, &isnum);
            lua_pop(L, 1);
            if (!isnum || !(ts[i] >= 0) || !isfinite(ts[i]) || (i > 0 && ts[i] < ts[i - 1]))
                luaL_argerror(L, tidx, lua_pushfstring(L, "increasing finite times >= 0 expected (entry %d)",
                                                       (int)i + 1));
        }
    } else {
        typeerror(L, tidx, inplace ? "time (number)" : "time (number) or table of increasing times");
        return NULL;
    }
    return ts;
}

/* Bound the work before doing it: an explicit Dormand-Prince step is stable only for
 * h |lambda| <~ 3.3, so reaching time t takes about t ||generator|| / 3.3 steps for a state
 * not already stationary. nu = 2 sum|h_j| + sum_k (sum|l_kj|)^2 bounds the generator's norm
 * (a Pauli string has norm 1). Refused up front when even 1/100 of that estimate exceeds
 * max_steps (default 10^7) — instead of integrating until the step limit (t = 2^62 took
 * 72 s to fail). */
static void lindblad_bound(lua_State *L, int tidx, const qd_pauli_sum *H, const qd_pauli_sum *Ls,
                           size_t nL, double tmax, size_t max_steps)
{
    double nu = 0;
    if (H)
        for (size_t j = 0; j < H->nterms; j++)
            nu += 2 * cabs(H->c[j]);
    for (size_t k = 0; k < nL; k++) {
        double l1 = 0;
        for (size_t j = 0; j < Ls[k].nterms; j++)
            l1 += cabs(Ls[k].c[j]);
        nu += l1 * l1;
    }
    double maxst = max_steps ? (double)max_steps : 1e7;
    double est = tmax * nu / 3.3;
    if (!(est <= 100 * maxst))
        luaL_argerror(L, tidx, lua_pushfstring(L, "time %f needs about %f integration steps "
                                                  "(t x ||generator|| = %f), more than max_steps = %f",
                                               tmax, est, tmax * nu, maxst));
}

static int lindblad_common(lua_State *L, int ridx, int hidx, int jidx, int tidx, int oidx, int inplace,
                           const char *const *allowed)
{
    qdl_reg *r = qdL_checkkind(L, ridx, QDL_K_DM);
    int n = r->n;
    if (n > QDL_LINDBLAD_MAX_QUBITS)
        return luaL_argerror(L, ridx, lua_pushfstring(L, "density matrix of at most %d qubits expected, got %d",
                                                      QDL_LINDBLAD_MAX_QUBITS, n));
    qdL_checkoptions(L, oidx, allowed);
    const qd_pauli_sum *H = NULL;
    if (!lua_isnoneornil(L, hidx)) {
        char label[64];
        snprintf(label, sizeof label, "bad argument #%d (Hamiltonian)", hidx - (inplace ? 1 : 0));
        H = qdL_topauli(L, hidx, n, label);
        if (qd_ps_max_imag(H) > 1e-12)
            return luaL_argerror(L, hidx, "Hermitian Hamiltonian (real coefficients) expected");
    }
    qd_pauli_sum *Ls = NULL;
    size_t nL = 0;
    if (inplace) {
        if (lua_istable(L, oidx) && lua_getfield(L, oidx, "jumps") != LUA_TNIL)
            nL = oplist(L, oidx, -1, n, "option 'jumps'", &Ls);
        else
            lua_pushnil(L);
    } else if (!lua_isnoneornil(L, jidx)) {
        nL = oplist(L, jidx, jidx, n, "jump operators", &Ls);
    }
    size_t nt = 0;
    int single = lua_type(L, tidx) == LUA_TNUMBER;
    double *ts = lindblad_times(L, tidx, inplace, &nt);
    qd_lindblad_opts o = {0};
    o.rtol = qdL_optnum(L, oidx, "rtol", 1e-8, 0, 1, QDL_OPEN_LO | QDL_OPEN_HI);
    o.atol = qdL_optnum(L, oidx, "atol", 1e-10, 0, 1, QDL_OPEN_LO | QDL_OPEN_HI);
    o.h0 = qdL_optnum(L, oidx, "h0", 0, 0, INFINITY, QDL_OPEN_LO | QDL_OPEN_HI);
    o.max_steps = optcount(L, oidx, "max_steps", 0, 0);
    lindblad_bound(L, tidx, H, Ls, nL, ts[nt - 1], o.max_steps);
    /* observables */
    qd_pauli_sum *Os = NULL;
    size_t nobs = 0;
    if (lua_istable(L, oidx) && lua_getfield(L, oidx, "observe") != LUA_TNIL)
        nobs = oplist(L, oidx, -1, n, "option 'observe'", &Os);
    else
        lua_pushnil(L);
    size_t d = (size_t)1 << n, D = d * d;
    /* output buffer: nt states (scratch, GC-managed) */
    size_t bytes;
    if (qd_mul_overflow(nt, D * sizeof(qd_c), &bytes))
        return luaL_error(L, "not enough memory for %d output states", (int)nt);
    qd_c *out = lua_newuserdatauv(L, bytes, 0);
    qd_c *work;
    if (inplace) {
        work = r->a;
    } else {
        work = lua_newuserdatauv(L, D * sizeof(qd_c), 0);
        memcpy(work, r->a, D * sizeof(qd_c));
    }
    qd_err e;
    qd_status s = qd_lindblad(work, n, H, Ls, nL, ts, nt, out, &o, &e);
    if (s != QD_OK)
        return qdL_raise(L, &e);
    /* results */
    if (inplace) {
        lua_pushvalue(L, ridx);
    } else if (single) {
        qdl_reg *q = qdL_newreg(L, QDL_K_DM, n, 1);
        memcpy(q->a, out, D * sizeof(qd_c));
    } else {
        lua_createtable(L, (int)nt, 0);
        for (size_t i = 0; i < nt; i++) {
            qdl_reg *q = qdL_newreg(L, QDL_K_DM, n, 1);
            memcpy(q->a, out + i * D, D * sizeof(qd_c));
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
    }
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)o.steps);
    lua_setfield(L, -2, "steps");
    lua_pushinteger(L, (lua_Integer)o.rejected);
    lua_setfield(L, -2, "rejected");
    lua_pushinteger(L, (lua_Integer)o.fevals);
    lua_setfield(L, -2, "fevals");
    if (nobs) {
        qdl_array *X = qdL_newarray(L, nt, nobs, 0, 0);
        double *x = X->data;
        for (size_t k = 0; k < nobs; k++)
            for (size_t i = 0; i < nt; i++)
                x[i + k * nt] = creal(qd_ps_expect_dm(&Os[k], out + i * D));
        lua_setfield(L, -2, "expect");
    }
    return 2;
}

/* qd.lindblad(rho, H, jumps, t | {t1, t2, ...} [, opts]) -> DensityMatrix | {DMs}, info */
static int l_lindblad(lua_State *L)
{
    qdL_checknargs(L, 5);
    static const char *const allowed[] = {"rtol", "atol", "h0", "max_steps", "observe", NULL};
    return lindblad_common(L, 1, 2, 3, 4, 5, 0, allowed);
}

/* rho:evolve(H, t, {jumps = {...}, rtol=, atol=, h0=, max_steps=, observe=}) -> rho, info */
int qdL_lindblad_evolve(lua_State *L)
{
    qdL_checknargs(L, 4);
    static const char *const allowed[] = {"jumps", "rtol", "atol", "h0", "max_steps", "observe", NULL};
    return lindblad_common(L, 1, 2, 0, 3, 4, 1, allowed);
}

/* ------------------------------------------------------------------ SSE */

typedef struct {
    lua_State *L;
    int fn, obj;         /* stack indices of the feedback function and the evolving object */
    qdl_reg *r;
    qd_c *a;             /* the buffer being evolved (must stay the same) */
    size_t nF;
    int failed;          /* the feedback raised or returned a bad value: e names it */
    int law;             /* a traced law instead of fn */
} fbctx;

/* one feedback call, run under lua_pcall (fb_protected) so that nothing raised by the
 * function, by a __len / __index of its result or by a memory error can jump past the core's
 * frames (and their buffers) in qd_sse_run */
typedef struct {
    fbctx *c;
    size_t step, count;
    double t;
    qd_c *coef;
    int *per_member;
    qd_err *e;
    qd_status s;
} fbcall;

static qdl_array *anyarray(lua_State *L, int idx)
{
    qdl_array *A = luaL_testudata(L, idx, QDL_VECTOR);
    return A ? A : luaL_testudata(L, idx, QDL_MATRIX);
}

static int fb_protected(lua_State *L)
{
    fbcall *f = lua_touserdata(L, 1);   /* the light userdata pushed by fb_call */
    fbctx *c = f->c;
    size_t step = f->step, nF = c->nF, count = f->count;
    qd_c *coef = f->coef;
    qd_err *e = f->e;
    /* this frame's arguments: 1 the fbcall, 2 the function, 3 the evolving object */
    lua_pushvalue(L, 2);
    lua_pushinteger(L, (lua_Integer)step + 1);
    lua_pushnumber(L, f->t);
    lua_pushvalue(L, 3);
    lua_call(L, 3, 1);
    if (c->r->a != c->a) {
        f->s = qd_fail(e, QD_EARG, "option 'feedback': feedback function freed the evolving %s at "
                                   "step %zu", qdL_kindname(c->r->kind), step + 1);
        return 0;
    }
    qdl_array *A = anyarray(L, -1);
    int vec = luaL_testudata(L, -1, QDL_VECTOR) != NULL;
    if (lua_type(L, -1) == LUA_TNUMBER && nF == 1) {
        coef[0] = lua_tonumber(L, -1);
        *f->per_member = 0;
    } else if (A && !A->freed && A->cols == 1 && A->rows == nF && vec) {
        for (size_t i = 0; i < nF; i++)
            coef[i] = qdL_array_get(A, i);
        *f->per_member = 0;
    } else if (A && !A->freed && A->rows == nF && A->cols == count) {
        if (A->cplx)
            memcpy(coef, A->data, sizeof(qd_c) * nF * count);
        else
            for (size_t i = 0; i < nF * count; i++)
                coef[i] = ((const double *)A->data)[i];
        *f->per_member = 1;
    } else if (lua_istable(L, -1) && !A && luaL_len(L, -1) == (lua_Integer)nF) {
        /* the length is read once; each entry once */
        for (size_t i = 0; i < nF; i++) {
            lua_geti(L, -1, (lua_Integer)i + 1);
            if (!qdL_tocomplex(L, -1, &coef[i])) {
                f->s = qd_fail(e, QD_EARG, "option 'feedback': feedback function at step %zu: number or {re, im} expected at position %zu",
                               step + 1, i + 1);
                return 0;
            }
            lua_pop(L, 1);
        }
        *f->per_member = 0;
    } else {
        f->s = qd_fail(e, QD_EARG,
                       "option 'feedback': feedback function at step %zu: %zu coefficients "
                       "expected (a table or qd.Vector of %zu, or a %zu x %zu qd.Matrix, one column per member), got %s",
                       step + 1, nF, nF, nF, count,
                       A ? (A->freed ? "a freed array" : "an array of another shape") : luaL_typename(L, -1));
        return 0;
    }
    return 0;
}

static qd_status fb_call(void *vctx, size_t step, double t, qd_c *a, size_t count, qd_c *coef,
                         int *per_member, qd_err *e)
{
    fbctx *c = vctx;
    lua_State *L = c->L;
    (void)a;
    int top = lua_gettop(L);
    fbcall f = {c, step, count, t, coef, per_member, e, QD_OK};
    lua_pushcfunction(L, fb_protected);
    lua_pushlightuserdata(L, &f);
    lua_pushvalue(L, c->fn);    /* stack indices of the sse frame, passed as values */
    lua_pushvalue(L, c->obj);
    if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        f.s = qd_fail(e, QD_EARG, "option 'feedback': feedback function failed at step %zu: %s", step + 1,
                      msg ? msg : "(error object is not a string)");
    }
    lua_settop(L, top);
    if (f.s != QD_OK)
        c->failed = 1;
    return f.s;
}

/* qd.sse(obj, {dt=, steps=, H=, measure={...}, gamma=, scheme=, normalize=, rng=, t0=,
 *   reverse=, feedback={terms=, fn= or law=}, record=, observe={...}, every=}) -> result table */
/* qd.sse(obj, opts): the options are read in steps (each leaves what it allocated on the
 * stack, GC-managed, so any error frees it), the run, then the result table. */

/* dt, steps (bounded: steps x members), t0, every, reverse, normalize, scheme, rng */
static qd_rng *sse_scalars(lua_State *L, size_t N, qd_sse_opts *o, int *record)
{
    o->dt = qdL_optnum(L, 2, "dt", 0, 0, INFINITY, QDL_OPEN_LO | QDL_OPEN_HI | QDL_REQUIRED);
    o->steps = optcount(L, 2, "steps", 0, 1);
    /* work is steps x members trajectories-steps: bounded before anything runs */
    if (o->steps > QDL_SSE_MAX_STEPS || (double)o->steps * (double)N > QDL_SSE_MAX_WORK)
        luaL_argerror(L, 2, lua_pushfstring(L, "option 'steps': at most %d steps and %f steps x "
                                               "members expected, got %I steps x %I members",
                                            QDL_SSE_MAX_STEPS, QDL_SSE_MAX_WORK, (LUAI_UACINT)o->steps, (LUAI_UACINT)N));
    o->t0 = 0;
    if (lua_getfield(L, 2, "t0") != LUA_TNIL) {
        if (lua_type(L, -1) != LUA_TNUMBER || !isfinite(lua_tonumber(L, -1)))
            luaL_argerror(L, 2, "option 't0': finite number expected");
        o->t0 = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    o->every = optcount(L, 2, "every", 1, 0);
    o->reverse = qdL_optbool(L, 2, "reverse", 0);
    o->normalize = qdL_optbool(L, 2, "normalize", 1);
    *record = qdL_optbool(L, 2, "record", 1);
    o->scheme = QD_SSE_ROUCHON;
    if (lua_getfield(L, 2, "scheme") != LUA_TNIL) {
        const char *sc = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
        if (strcmp(sc, "euler") == 0)
            o->scheme = QD_SSE_EULER;
        else if (strcmp(sc, "rouchon") == 0)
            o->scheme = QD_SSE_ROUCHON;
        else
            luaL_argerror(L, 2, lua_pushfstring(L, "option 'scheme': \"euler\" or \"rouchon\" expected, got %s",
                                                luaL_tolstring(L, -1, NULL)));
    }
    lua_pop(L, 1);
    qd_rng *rng;
    if (lua_getfield(L, 2, "rng") != LUA_TNIL) {
        rng = luaL_testudata(L, -1, QDL_RNG);
        if (!rng)
            luaL_argerror(L, 2, lua_pushfstring(L, "option 'rng': qd.Rng expected, got %s", luaL_typename(L, -1)));
    } else {
        rng = qdL_runrng(L);
    }
    lua_pop(L, 1);
    return rng;
}

/* H, the measured observables (<= 64, Hermitian) and their rates gamma */
static void sse_measure(lua_State *L, int n, qd_sse_opts *o)
{
    if (lua_getfield(L, 2, "H") != LUA_TNIL) {
        o->H = qdL_topauli(L, -1, n, "bad argument #2 (option 'H')");
        if (qd_ps_max_imag(o->H) > 1e-12)
            luaL_argerror(L, 2, "option 'H': Hermitian operator (real coefficients) expected");
    }
    qd_pauli_sum *As = NULL;
    size_t m = 0;
    if (lua_getfield(L, 2, "measure") != LUA_TNIL) {
        m = oplist(L, 2, -1, n, "option 'measure'", &As);
        if (m > 64)
            luaL_argerror(L, 2, "option 'measure': at most 64 observables");
        for (size_t k = 0; k < m; k++)
            if (qd_ps_max_imag(&As[k]) > 1e-12)
                luaL_argerror(L, 2, lua_pushfstring(L, "option 'measure': observable %d is not Hermitian", (int)k + 1));
    } else {
        lua_pushnil(L);
    }
    double *gam = lua_newuserdatauv(L, sizeof(double) * (m ? m : 1), 0);
    int gt = lua_getfield(L, 2, "gamma");
    if (m > 0 && gt == LUA_TNIL)
        luaL_argerror(L, 2, "option 'gamma' (measurement rate: a number or one per observable) expected");
    if (gt == LUA_TNUMBER) {
        for (size_t k = 0; k < m; k++)
            gam[k] = lua_tonumber(L, -1);
    } else if (gt == LUA_TTABLE) {
        if ((size_t)luaL_len(L, -1) != m)
            luaL_argerror(L, 2, lua_pushfstring(L, "option 'gamma': %d rates expected (one per measured observable), got %d",
                                                (int)m, (int)luaL_len(L, -1)));
        for (size_t k = 0; k < m; k++) {
            lua_geti(L, -1, (lua_Integer)k + 1);
            gam[k] = lua_tonumber(L, -1);
            if (lua_type(L, -1) != LUA_TNUMBER)
                gam[k] = NAN;
            lua_pop(L, 1);
        }
    } else if (gt != LUA_TNIL) {
        luaL_argerror(L, 2, lua_pushfstring(L, "option 'gamma': number or table expected, got %s", luaL_typename(L, -1)));
    }
    lua_pop(L, 1);
    for (size_t k = 0; k < m; k++)
        if (!(gam[k] >= 0) || !isfinite(gam[k]))
            luaL_argerror(L, 2, "option 'gamma': finite rates >= 0 expected");
    o->m = m;
    o->A = As;
    o->gamma = gam;
}

/* feedback = {terms = qd.PauliSum or {strings}, fn = function(step, t, obj)} or {terms =,
 * law = function(t, s)}: one sum of the terms (a list's terms concatenated in order, storage
 * GC-managed) and the callback, or the law traced once (lua_law.c) */
static void sse_feedback(lua_State *L, int n, qdl_reg *r, qd_sse_opts *o, fbctx *ctx)
{
    if (lua_getfield(L, 2, "feedback") == LUA_TNIL)
        return;
    int fi = lua_gettop(L);
    if (!lua_istable(L, fi))
        luaL_argerror(L, 2, "option 'feedback': table {terms = qd.PauliSum or {strings}, fn = function} expected");
    lua_pushnil(L);
    while (lua_next(L, fi)) {
        lua_pop(L, 1);
        const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
        if (strcmp(k, "terms") != 0 && strcmp(k, "fn") != 0 && strcmp(k, "law") != 0)
            luaL_argerror(L, 2, lua_pushfstring(L, "option 'feedback': unknown key '%s' (known: terms, fn, law)", k));
    }
    int tf = lua_getfield(L, fi, "fn"), tl = lua_getfield(L, fi, "law");
    if (tf != LUA_TNIL && tl != LUA_TNIL)
        luaL_argerror(L, 2, "option 'feedback': fn or law, not both");
    if (tl != LUA_TNIL && tl != LUA_TFUNCTION)
        luaL_argerror(L, 2, "option 'feedback': law (a function(t, s) returning the coefficients' formulas) expected");
    if (tl == LUA_TNIL && tf != LUA_TFUNCTION)
        luaL_argerror(L, 2, "option 'feedback': fn (a function(step, t, obj) returning the coefficients) or law "
                            "(a function(t, s) traced once) expected");
    int lawfn = tl == LUA_TFUNCTION ? lua_gettop(L) : 0;
    ctx->fn = lua_gettop(L) - 1;
    int tt = lua_getfield(L, fi, "terms");
    if (tt == LUA_TTABLE && !luaL_testudata(L, -1, "qd.PauliSum")) {
        qd_pauli_sum *arr;   /* its length is read once, by oplist */
        size_t cnt = oplist(L, 2, -1, n, "option 'feedback' terms", &arr);
        if (cnt < 1)
            luaL_argerror(L, 2, "option 'feedback': terms must not be empty");
        qd_pauli_sum *F = lua_newuserdatauv(L, sizeof(qd_pauli_sum), 0);
        qd_ps_init(F, n);
        size_t tot = 0;
        for (size_t i = 0; i < cnt; i++)
            tot += arr[i].nterms;
        uint64_t *xs = lua_newuserdatauv(L, sizeof(uint64_t) * (tot ? tot : 1) * 2, 0);
        qd_c *cs = lua_newuserdatauv(L, sizeof(qd_c) * (tot ? tot : 1), 0);
        size_t j = 0;
        for (size_t i = 0; i < cnt; i++)
            for (size_t t = 0; t < arr[i].nterms; t++, j++) {
                xs[j] = arr[i].x[t];
                xs[tot + j] = arr[i].z[t];
                cs[j] = arr[i].c[t];
            }
        F->x = xs;
        F->z = xs + tot;
        F->c = cs;
        F->nterms = F->cap = tot;
        o->F = F;
    } else if (tt != LUA_TNIL) {
        o->F = qdL_topauli(L, -1, n, "bad argument #2 (option 'feedback' terms)");
    } else {
        luaL_argerror(L, 2, "option 'feedback': terms (qd.PauliSum or list of Pauli strings) expected");
    }
    if (o->F->nterms < 1)
        luaL_argerror(L, 2, "option 'feedback': terms must not be empty");
    if (lawfn) {   /* traced once; its storage stays on the stack for the run */
        qd_sse_law *law = lua_newuserdatauv(L, sizeof(qd_sse_law), 0);
        qd_c *a = r->a;
        qdL_law_trace(L, lawfn, n, o->F->nterms, law);
        if (r->a != a)
            luaL_argerror(L, 2, lua_pushfstring(L, "option 'feedback': the law freed the evolving %s",
                                                qdL_kindname(r->kind)));
        o->law = law;
        ctx->law = 1;
        return;
    }
    ctx->L = L;
    ctx->obj = 1;
    ctx->r = r;
    ctx->a = r->a;
    ctx->nF = o->F->nterms;
    o->fb = fb_call;
    o->ctx = ctx;
}

/* the tracked observables and the output buffers (observed means, records) */
static void sse_outputs(lua_State *L, int n, size_t N, int record, qd_sse_opts *o)
{
    qd_pauli_sum *Os = NULL;
    if (lua_getfield(L, 2, "observe") != LUA_TNIL)
        o->nobs = oplist(L, 2, -1, n, "option 'observe'", &Os);
    o->obs = Os;
    size_t nsave = o->steps / o->every + 1, bytes;
    if (o->nobs) {
        if (qd_mul_overflow(nsave, o->nobs * sizeof(double), &bytes))
            luaL_error(L, "not enough memory for the tracked observables");
        o->obs_out = qdL_scratch(L, bytes, 1, "the tracked observables");
    }
    if (record && o->m > 0) {
        size_t cnt;
        if (qd_mul_overflow(o->steps, N, &cnt) || qd_mul_overflow(cnt, o->m * sizeof(double), &bytes))
            luaL_error(L, "not enough memory for the measurement records");
        char what[96];
        snprintf(what, sizeof what, "measurement records (%zu steps x %zu members x %zu)", o->steps, N, o->m);
        o->records = qdL_scratch(L, bytes, 1, what);   /* GC-managed: freed whatever follows */
    }
}

/* {records = {steps x N per observable}, observed, times, t, steps, scheme} */
static void sse_result(lua_State *L, size_t N, int record, const qd_sse_opts *o)
{
    size_t nsave = o->steps / o->every + 1;
    lua_createtable(L, 0, 5);
    int res = lua_gettop(L);
    if (record && o->m > 0) {
        lua_createtable(L, (int)o->m, 0);
        for (size_t k = 0; k < o->m; k++) {
            qdl_array *R = qdL_newarray(L, o->steps, N, 0, 0);
            memcpy(R->data, o->records + k * o->steps * N, sizeof(double) * o->steps * N);
            lua_rawseti(L, -2, (lua_Integer)k + 1);
        }
        lua_setfield(L, res, "records");
    }
    if (o->nobs) {
        qdl_array *X = qdL_newarray(L, nsave, o->nobs, 0, 0);
        memcpy(X->data, o->obs_out, sizeof(double) * nsave * o->nobs);
        lua_setfield(L, res, "observed");
        qdl_array *T = qdL_newarray(L, nsave, 1, 0, 1);
        for (size_t i = 0; i < nsave; i++) {
            double k = (double)(i * o->every);
            ((double *)T->data)[i] = o->reverse ? o->t0 - k * o->dt : o->t0 + k * o->dt;
        }
        lua_setfield(L, res, "times");
    }
    lua_pushnumber(L, o->reverse ? o->t0 - (double)o->steps * o->dt : o->t0 + (double)o->steps * o->dt);
    lua_setfield(L, res, "t");
    lua_pushinteger(L, (lua_Integer)o->steps);
    lua_setfield(L, res, "steps");
    lua_pushstring(L, o->scheme == QD_SSE_EULER ? "euler" : "rouchon");
    lua_setfield(L, res, "scheme");
}

static int l_sse(lua_State *L)
{
    qdL_checknargs(L, 2);
    qdl_reg *r = qdL_checkreg(L, 1);
    if (r->kind == QDL_K_DM)
        return luaL_argerror(L, 1, "qd.State or qd.Ensemble expected, got qd.DensityMatrix (use qd.lindblad for the average dynamics)");
    if (!lua_istable(L, 2))
        return typeerror(L, 2, "options table {dt=, steps=, ...}");
    static const char *const allowed[] = {"dt", "steps", "H", "measure", "gamma", "scheme", "normalize", "rng", "t0",
                                          "reverse", "feedback", "record", "observe", "every", NULL};
    qdL_checkoptions(L, 2, allowed);
    int n = r->n, record;
    size_t N = r->count;
    qd_sse_opts o;
    fbctx ctx;
    memset(&o, 0, sizeof o);
    memset(&ctx, 0, sizeof ctx);
    qd_rng *rng = sse_scalars(L, N, &o, &record);
    sse_measure(L, n, &o);
    sse_feedback(L, n, r, &o, &ctx);
    sse_outputs(L, n, N, record, &o);
    /* rng stream: split off the generator, member j = substream j */
    qd_rng base = qd_rng_split(rng);
    qd_err e;
    qd_status s = qd_sse_run(r->a, n, N, &o, &base, &e);
    if (s != QD_OK && ctx.failed)
        return luaL_argerror(L, 2, e.msg);   /* "bad argument #2 to 'sse' (option 'feedback': ...)" */
    if (s != QD_OK && ctx.law && strncmp(e.msg, "feedback law:", 13) == 0)
        return luaL_argerror(L, 2, lua_pushfstring(L, "option 'feedback': %s", e.msg));
    if (s != QD_OK)
        return qdL_raise(L, &e);
    sse_result(L, N, record, &o);
    return 1;
}

/* core.feedback_solve(V, H, damp, entries, eps) -> C (m x N): the per-member solve of reverse-time
 * diffusion's learnt feedback (qd_feedback_solve, feedback.c). V: real array of N * nv entries
 * (N x nv column-major: the members' Pauli expectations, the model's m strings first), H: real
 * N x m qd.Matrix (the learnt drift), damp: m numbers, entries: flat list {q, p, v, f, ...}
 * (1-based, q non-decreasing), eps > 0. Used by stdlib/qd/protocols/reverse_diffusion.lua. */
static int l_feedback_solve(lua_State *L)
{
    qdL_checknargs(L, 5);
    qdl_array *V = qdL_checkarray(L, 1), *H = qdL_checkarray(L, 2);
    if (V->cplx)
        return luaL_argerror(L, 1, "real qd.Vector or qd.Matrix expected, got a complex one");
    if (H->cplx || H->rows < 1 || H->cols < 1 || H->cols > 4096)
        return luaL_argerror(L, 2, "real N x m qd.Matrix (1 <= m <= 4096) expected");
    size_t N = H->rows, nvals = V->rows * V->cols;
    int m = (int)H->cols;
    if (nvals % N != 0 || nvals / N < (size_t)m)
        return luaL_argerror(L, 1, lua_pushfstring(L, "N x nv values expected with N = %d (the rows of argument #2) "
                                                   "and nv >= %d, got %d entries", (int)N, m, (int)nvals));
    size_t nv = nvals / N;
    lua_Integer md = qdL_checklen(L, 3, 3, 4096, "damping list");
    if (md != m)
        return luaL_argerror(L, 3, lua_pushfstring(L, "%d numbers expected, got %d", m, (int)md));
    double *damp = qdL_scratch(L, (size_t)m, sizeof(double), "the damping list");
    for (int q = 0; q < m; q++) {
        lua_geti(L, 3, q + 1);
        int ok = 0;
        damp[q] = lua_tonumberx(L, -1, &ok);
        lua_pop(L, 1);
        if (!ok || !isfinite(damp[q]))
            return luaL_argerror(L, 3, lua_pushfstring(L, "entry %d: finite number expected", q + 1));
    }
    lua_Integer ne4 = qdL_checklen(L, 4, 4, (lua_Integer)1 << 26, "entry list");
    if (ne4 % 4 != 0)
        return luaL_argerror(L, 4, "flat list {q, p, v, f, ...} expected (length a multiple of 4)");
    size_t ne = (size_t)ne4 / 4;
    qd_fb_entry *e = qdL_scratch(L, ne ? ne : 1, sizeof *e, "the entry list");
    for (size_t a = 0; a < ne; a++) {
        lua_Integer iv[3];
        for (int k = 0; k < 3; k++) {
            lua_geti(L, 4, (lua_Integer)(4 * a) + k + 1);
            int ok = 0;
            iv[k] = lua_tointegerx(L, -1, &ok);
            lua_pop(L, 1);
            lua_Integer hi = k == 2 ? (lua_Integer)nv : m;
            if (!ok || iv[k] < 1 || iv[k] > hi)
                return luaL_argerror(L, 4, lua_pushfstring(L, "entry %d: %s index in 1..%d expected", (int)a + 1,
                                                           k == 0 ? "row (q)" : k == 1 ? "column (p)" : "value (v)", (int)hi));
        }
        lua_geti(L, 4, (lua_Integer)(4 * a) + 4);
        int ok = 0;
        double f = lua_tonumberx(L, -1, &ok);
        lua_pop(L, 1);
        if (!ok || !isfinite(f))
            return luaL_argerror(L, 4, lua_pushfstring(L, "entry %d: finite factor expected", (int)a + 1));
        if (a > 0 && iv[0] - 1 < e[a - 1].q)
            return luaL_argerror(L, 4, lua_pushfstring(L, "entry %d: rows (q) in non-decreasing order expected", (int)a + 1));
        e[a] = (qd_fb_entry){(int)iv[0] - 1, (int)iv[1] - 1, (int)iv[2] - 1, f};
    }
    double eps = luaL_checknumber(L, 5);
    if (!(eps > 0) || !isfinite(eps))
        return luaL_argerror(L, 5, "finite eps > 0 expected");
    const double *vd = V->data, *hd = H->data;
    for (size_t i = 0; i < nvals; i++)
        if (!isfinite(vd[i]))
            return luaL_argerror(L, 1, lua_pushfstring(L, "entry %d is not finite", (int)i + 1));
    for (size_t i = 0; i < N * (size_t)m; i++)
        if (!isfinite(hd[i]))
            return luaL_argerror(L, 2, lua_pushfstring(L, "entry %d is not finite", (int)i + 1));
    qdl_array *C = qdL_newarray(L, (size_t)m, N, 0, 0);
    qd_err err;
    if (qd_feedback_solve(m, N, e, ne, vd, hd, damp, eps, C->data, &err) != QD_OK)
        return qdL_raise(L, &err);
    return 1;
}

/* core.poly_features(V, N, mono, tf [, j0, j1]) -> Phi ((j1 - j0 + 1) x #tf * #mono qd.Matrix):
 * the learnt drift's features (qd_poly_features) of members j0..j1 (1-based; default all N):
 * V the members' expectations (N * nv entries, N x nv column-major, as for feedback_solve),
 * mono a list of monomials (each a list of 1-based indices into V's columns; {} is the
 * constant 1), tf the time functions' values. Used by stdlib/qd/protocols/reverse_diffusion.lua
 * for its fit (rows in chunks) and its feedback (all members). */
static int l_poly_features(lua_State *L)
{
    qdL_checknargs(L, 6);
    qdl_array *V = qdL_checkarray(L, 1);
    if (V->cplx || V->freed)
        return luaL_argerror(L, 1, "live real qd.Vector or qd.Matrix expected");
    lua_Integer Ni = luaL_checkinteger(L, 2);
    size_t nvals = V->rows * V->cols;
    if (Ni < 1 || nvals % (size_t)Ni != 0)
        return luaL_argerror(L, 2, lua_pushfstring(L, "member count dividing the %d values expected", (int)nvals));
    size_t N = (size_t)Ni, nv = nvals / N;
    lua_Integer j0 = luaL_optinteger(L, 5, 1), j1 = luaL_optinteger(L, 6, Ni);
    if (j0 < 1 || j0 > Ni)
        return luaL_argerror(L, 5, lua_pushfstring(L, "first member in 1..%d expected", (int)Ni));
    if (j1 < j0 || j1 > Ni)
        return luaL_argerror(L, 6, lua_pushfstring(L, "last member in %d..%d expected", (int)j0, (int)Ni));
    luaL_checktype(L, 3, LUA_TTABLE);
    luaL_checktype(L, 4, LUA_TTABLE);
    lua_Integer nmono = qdL_checklen(L, 3, 3, 1 << 16, "monomial list");
    lua_Integer ntf = qdL_checklen(L, 4, 4, 64, "time-function list");
    size_t *off = qdL_scratch(L, (size_t)nmono + 1, sizeof(size_t), "the monomial offsets");
    double *tf = qdL_scratch(L, (size_t)ntf, sizeof(double), "the time functions");
    size_t total = 0;
    for (lua_Integer b = 1; b <= nmono; b++) {
        if (lua_geti(L, 3, b) != LUA_TTABLE)
            return luaL_argerror(L, 3, lua_pushfstring(L, "monomial %d: list of indices expected", (int)b));
        total += (size_t)luaL_len(L, -1);
        lua_pop(L, 1);
    }
    int *idx = qdL_scratch(L, total ? total : 1, sizeof(int), "the monomials");
    size_t k = 0;
    for (lua_Integer b = 1; b <= nmono; b++) {
        off[b - 1] = k;
        lua_geti(L, 3, b);
        lua_Integer len = luaL_len(L, -1);
        for (lua_Integer i = 1; i <= len && k < total; i++) {
            lua_geti(L, -1, i);
            int ok = 0;
            lua_Integer v = lua_tointegerx(L, -1, &ok);
            lua_pop(L, 1);
            if (!ok || v < 1 || (size_t)v > nv)
                return luaL_argerror(L, 3, lua_pushfstring(L, "monomial %d, entry %d: index in 1..%d expected", (int)b,
                                                           (int)i, (int)nv));
            idx[k++] = (int)v - 1;
        }
        lua_pop(L, 1);
    }
    off[nmono] = k;
    for (lua_Integer a = 1; a <= ntf; a++) {
        lua_geti(L, 4, a);
        int ok = 0;
        tf[a - 1] = lua_tonumberx(L, -1, &ok);
        lua_pop(L, 1);
        if (!ok || !isfinite(tf[a - 1]))
            return luaL_argerror(L, 4, lua_pushfstring(L, "entry %d: finite number expected", (int)a));
    }
    size_t rows = (size_t)(j1 - j0 + 1);
    qdl_array *Phi = qdL_newarray_nz(L, rows, (size_t)(ntf * nmono), 0, 0);
    qd_poly_features(rows, N, (const double *)V->data + (j0 - 1), idx, off, (size_t)nmono, tf,
                     (size_t)ntf, Phi->data);
    return 1;
}

void qdL_open_dynamics(lua_State *L)
{
    static const luaL_Reg fns[] = {{"lindblad", l_lindblad}, {"sse", l_sse},
                                   {"feedback_solve", l_feedback_solve}, {"poly_features", l_poly_features},
                                   {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
