/* lua_random.c — qd.random: Haar unitaries, random density matrices (Hilbert-Schmidt,
 * induced, Bures), random low-rank mixtures, random brickwork circuits; and the C kernels
 * behind qd.data (core.data_clustered, data_circle, data_xxzz; stdlib/qd/data.lua checks
 * the options and documents them). Every function takes an optional qd.Rng (the run's
 * generator otherwise); like qd.haar_state, it splits a fresh stream off that generator,
 * and batched functions draw member k from substream k of it. */
#include "lua_util.h"
#include "qd_random.h"
#include <math.h>
#include <string.h>

#define MAX_MATRIX_QUBITS 12   /* 4096 x 4096 complex = 256 MiB */

static int checkmatqubits(lua_State *L, int arg)
{
    int isint = 0;
    lua_Integer n = lua_tointegerx(L, arg, &isint);
    if (!isint)
        luaL_argerror(L, arg, lua_pushfstring(L, "number of qubits expected, got %s",
                                              lua_type(L, arg) == LUA_TNUMBER ? "a non-integer" : luaL_typename(L, arg)));
    if (n < 1 || n > MAX_MATRIX_QUBITS)
        luaL_argerror(L, arg, lua_pushfstring(L, "number of qubits 1..%d expected, got %I", MAX_MATRIX_QUBITS,
                                              (LUAI_UACINT)n));
    return (int)n;
}

static lua_Integer optinteger_field(lua_State *L, int arg, const char *key, lua_Integer def)
{
    if (lua_isnoneornil(L, arg))
        return def;
    int t = lua_getfield(L, arg, key);
    lua_Integer v = def;
    if (t != LUA_TNIL) {
        int isint = 0;
        v = lua_tointegerx(L, -1, &isint);
        if (!isint)
            luaL_argerror(L, arg, lua_pushfstring(L, "option '%s': integer expected, got %s", key, luaL_typename(L, -1)));
    }
    lua_pop(L, 1);
    return v;
}

/* qd.random.unitary(n [, rng]) -> 2^n x 2^n complex qd.Matrix, Haar distributed */
static int l_unitary(lua_State *L)
{
    qdL_checknargs(L, 2);
    int n = checkmatqubits(L, 1);
    qd_rng *rng = qdL_optrng(L, 2);
    size_t d = (size_t)1 << n;
    qdl_array *U = qdL_newarray(L, d, d, 1, 0);
    qd_rng sub = qd_rng_split(rng);
    qd_err e;
    if (qd_haar_unitary(U->data, d, &sub, &e) != QD_OK)
        return qdL_raise(L, &e);
    return 1;
}

/* qd.random.dm(n [, rng] [, {measure = "hs" | "bures", rank = k}]) -> qd.DensityMatrix */
static int l_dm(lua_State *L)
{
    qdL_checknargs(L, 3);
    int n = checkmatqubits(L, 1);
    int oi;
    qd_rng *rng = qdL_rng_opts(L, 2, &oi);
    qdL_checknargs(L, oi);
    static const char *const opts[] = {"measure", "rank", NULL};
    qdL_checkoptions(L, oi, opts);
    size_t d = (size_t)1 << n;
    const char *measure = "hs";
    if (!lua_isnoneornil(L, oi)) {
        int t = lua_getfield(L, oi, "measure");
        if (t == LUA_TSTRING)
            measure = lua_tostring(L, -1);
        else if (t != LUA_TNIL)
            return luaL_argerror(L, oi, lua_pushfstring(L, "option 'measure': \"hs\" or \"bures\" expected, got %s", luaL_typename(L, -1)));
        lua_pop(L, 1);   /* the options table keeps the string alive */
    }
    int bures = strcmp(measure, "bures") == 0;
    if (!bures && strcmp(measure, "hs") != 0)
        return luaL_argerror(L, oi, lua_pushfstring(L, "option 'measure': \"hs\" or \"bures\" expected, got \"%s\"", measure));
    lua_Integer rank = optinteger_field(L, oi, "rank", (lua_Integer)d);
    if (rank < 1 || (size_t)rank > d)
        return luaL_argerror(L, oi, lua_pushfstring(L, "option 'rank': 1..%I expected, got %I", (LUAI_UACINT)d, (LUAI_UACINT)rank));
    if (bures && (size_t)rank != d)
        return luaL_argerror(L, oi, "option 'rank' is for the Hilbert-Schmidt (induced) measure only");
    qdl_reg *r = qdL_newreg(L, QDL_K_DM, n, 1);
    qd_rng sub = qd_rng_split(rng);
    qd_err e;
    qd_status st = bures ? qd_random_dm_bures(r->a, d, &sub, &e) : qd_random_dm_hs(r->a, d, (size_t)rank, &sub, &e);
    if (st != QD_OK)
        return qdL_raise(L, &e);
    return 1;
}

/* qd.random.mixture(n, k [, rng] [, {weights = {...}}]) -> qd.DensityMatrix, qd.Vector weights */
static int l_mixture(lua_State *L)
{
    qdL_checknargs(L, 4);
    int n = checkmatqubits(L, 1);
    size_t d = (size_t)1 << n;
    lua_Integer k = luaL_checkinteger(L, 2);
    if (k < 1 || (size_t)k > d)
        return luaL_argerror(L, 2, lua_pushfstring(L, "rank 1..%I expected, got %I", (LUAI_UACINT)d, (LUAI_UACINT)k));
    int oi;
    qd_rng *rng = qdL_rng_opts(L, 3, &oi);
    qdL_checknargs(L, oi);
    static const char *const opts[] = {"weights", NULL};
    qdL_checkoptions(L, oi, opts);
    qdl_array *wv = qdL_newarray(L, (size_t)k, 1, 0, 1);
    double *w = NULL;
    int has_w = 0;
    if (!lua_isnoneornil(L, oi)) {
        has_w = lua_getfield(L, oi, "weights") != LUA_TNIL;
        if (!has_w)
            lua_pop(L, 1);
    }
    if (has_w) {
        int wi = lua_gettop(L);
        qdl_array *a = qdL_testarray(L, wi);
        lua_Integer len = a ? (lua_Integer)(a->rows * a->cols) : lua_istable(L, wi) ? luaL_len(L, wi) : -1;
        if (len != k)
            return luaL_argerror(L, oi, lua_pushfstring(L, "option 'weights': %I weights expected, got %s", (LUAI_UACINT)k,
                                                        len < 0 ? luaL_typename(L, wi) : lua_pushfstring(L, "%I", (LUAI_UACINT)len)));
        w = wv->data;
        double s = 0;
        for (lua_Integer i = 0; i < k; i++) {
            double x;
            if (a) {
                if (a->cplx)
                    return luaL_argerror(L, oi, "option 'weights': real weights expected");
                x = ((double *)a->data)[i];
            } else {
                lua_geti(L, wi, i + 1);
                if (lua_type(L, -1) != LUA_TNUMBER)
                    return luaL_argerror(L, oi, lua_pushfstring(L, "option 'weights': number "
                                                                   "expected at position %I", (LUAI_UACINT)(i + 1)));
                x = lua_tonumber(L, -1);
                lua_pop(L, 1);
            }
            if (!(x >= 0) || !isfinite(x))
                return luaL_argerror(L, oi, lua_pushfstring(L, "option 'weights': non-negative weights expected, got %f at position %I",
                                                            x, (LUAI_UACINT)(i + 1)));
            w[i] = x;
            s += x;
        }
        if (fabs(s - 1.0) > 1e-10)
            return luaL_argerror(L, oi, lua_pushfstring(L, "option 'weights': weights summing to 1 expected, sum is %f", s));
        lua_pop(L, 1);
    }
    int wv_idx = lua_gettop(L);
    qdl_reg *r = qdL_newreg(L, QDL_K_DM, n, 1);
    qd_rng sub = qd_rng_split(rng);
    qd_err e;
    if (qd_random_mixture(r->a, d, (size_t)k, w, wv->data, &sub, &e) != QD_OK)
        return qdL_raise(L, &e);
    lua_pushvalue(L, wv_idx);
    return 2;
}

static int checkdepth(lua_State *L, int arg)
{
    int isint = 0;
    lua_Integer v = lua_tointegerx(L, arg, &isint);
    if (!isint || v < 0 || v > 100000)
        luaL_argerror(L, arg, "depth 0..100000 expected");
    return (int)v;
}

/* qd.random.circuit(n, depth [, rng]) -> qd.State: a random brickwork circuit on |0..0> */
static int l_circuit(lua_State *L)
{
    qdL_checknargs(L, 3);
    int n = qdL_checknqubits(L, 1, QD_MAX_QUBITS);
    int depth = checkdepth(L, 2);
    qd_rng *rng = qdL_optrng(L, 3);
    qdl_reg *s = qdL_newreg(L, QDL_K_STATE, n, 1);
    s->a[0] = 1;
    qd_rng base = qd_rng_split(rng);
    qd_random_circuit(s->a, n, 1, depth, &base);
    return 1;
}

/* qd.random.circuit_states(n, N, depth [, rng]) -> qd.Ensemble: member k its own circuit */
static int l_circuit_states(lua_State *L)
{
    qdL_checknargs(L, 4);
    int n = qdL_checknqubits(L, 1, QD_MAX_QUBITS);
    size_t N = qdL_checkcount(L, 2, "number of states");
    int depth = checkdepth(L, 3);
    qd_rng *rng = qdL_optrng(L, 4);
    qdl_reg *E = qdL_newreg(L, QDL_K_ENS, n, N);
    size_t d = (size_t)1 << n;
    for (size_t k = 0; k < N; k++)
        E->a[k * d] = 1;
    qd_rng base = qd_rng_split(rng);
    qd_random_circuit(E->a, n, N, depth, &base);
    return 1;
}

/* ---- data-set kernels (arguments checked again by stdlib/qd/data.lua) ---- */
static double checkfinite(lua_State *L, int arg)
{
    double x = luaL_checknumber(L, arg);
    if (!isfinite(x))
        luaL_argerror(L, arg, "finite number expected");
    return x;
}

/* core.data_clustered(n, N, eps, rng) -> Ensemble */
static int l_data_clustered(lua_State *L)
{
    qdL_checknargs(L, 4);
    int n = qdL_checknqubits(L, 1, QD_MAX_QUBITS);
    size_t N = qdL_checkcount(L, 2, "number of states");
    double eps = checkfinite(L, 3);
    qd_rng *rng = qdL_optrng(L, 4);
    qdl_reg *E = qdL_newreg(L, QDL_K_ENS, n, N);
    qd_rng base = qd_rng_split(rng);
    qd_data_clustered(E->a, n, N, eps, &base);
    return 1;
}

/* core.data_circle(n, N, lo, hi, rng) -> Ensemble, qd.Matrix n x N of angles */
static int l_data_circle(lua_State *L)
{
    qdL_checknargs(L, 5);
    int n = qdL_checknqubits(L, 1, 30);
    size_t N = qdL_checkcount(L, 2, "number of states");
    double lo = checkfinite(L, 3), hi = checkfinite(L, 4);
    if (hi < lo)
        return luaL_argerror(L, 4, "upper bound >= lower bound expected");
    qd_rng *rng = qdL_optrng(L, 5);
    qdl_reg *E = qdL_newreg(L, QDL_K_ENS, n, N);
    qdl_array *phis = qdL_newarray(L, (size_t)n, N, 0, 0);
    qd_rng base = qd_rng_split(rng);
    qd_data_circle(E->a, n, N, lo, hi, &base, phis->data);
    return 2;
}

/* core.data_xxzz(N, p, emax, rng) -> Ensemble, qd.Vector is_xx, qd.Vector eps */
static int l_data_xxzz(lua_State *L)
{
    qdL_checknargs(L, 4);
    size_t N = qdL_checkcount(L, 1, "number of states");
    double p = checkfinite(L, 2), emax = checkfinite(L, 3);
    if (p < 0 || p > 1)
        return luaL_argerror(L, 2, "probability 0..1 expected");
    qd_rng *rng = qdL_optrng(L, 4);
    qdl_reg *E = qdL_newreg(L, QDL_K_ENS, 2, N);
    qdl_array *xx = qdL_newarray(L, N, 1, 0, 1);
    qdl_array *ev = qdL_newarray(L, N, 1, 0, 1);
    qd_rng base = qd_rng_split(rng);
    qd_data_xxzz(E->a, N, p, emax, &base, xx->data, ev->data);
    return 3;
}

/* core.dist_popcount(n, w) -> qd.Vector p(x) = w[popcount(x) + 1] / sum over x = 0..2^n-1
 * (the GHZ family of qd.data: distributions that depend on the number of ones only) */
static int l_dist_popcount(lua_State *L)
{
    int n = qdL_checknqubits(L, 1, 30);
    luaL_checktype(L, 2, LUA_TTABLE);
    double w[64], total = 0;
    for (int k = 0; k <= n; k++) {
        lua_geti(L, 2, k + 1);
        w[k] = lua_tonumber(L, -1);
        lua_pop(L, 1);
        if (!(w[k] >= 0) || !isfinite(w[k]))
            return luaL_argerror(L, 2, "finite weights >= 0 expected, one per number of ones");
    }
    size_t d = (size_t)1 << n;
    qdl_array *v = qdL_newarray(L, d, 1, 0, 1);
    double *p = v->data;
    /* normalised: the weight of k ones times C(n, k) summed */
    double binom = 1;
    for (int k = 0; k <= n; k++) {
        total += w[k] * binom;
        binom = binom * (n - k) / (k + 1);
    }
    if (!(total > 0))
        return luaL_argerror(L, 2, "weights with a positive total expected");
    for (size_t i = 0; i < d; i++)
        p[i] = w[__builtin_popcountll((unsigned long long)i)] / total;
    return 1;
}

/* core.dist_uniform(n, {i1, i2, ...}) -> qd.Vector uniform over the distinct basis indices
 * given (0-based), zero elsewhere (bars and stripes) */
static int l_dist_uniform(lua_State *L)
{
    int n = qdL_checknqubits(L, 1, 30);
    luaL_checktype(L, 2, LUA_TTABLE);
    size_t d = (size_t)1 << n;
    lua_Integer m = qdL_checklen(L, 2, 2, (lua_Integer)d, "support");
    qdl_array *v = qdL_newarray(L, d, 1, 0, 1);
    double *p = v->data;
    size_t distinct = 0;
    for (lua_Integer j = 1; j <= m; j++) {
        lua_geti(L, 2, j);
        int isint = 0;
        lua_Integer i = lua_tointegerx(L, -1, &isint);
        lua_pop(L, 1);
        if (!isint || i < 0 || (size_t)i >= d)
            return luaL_argerror(L, 2, lua_pushfstring(L, "basis index 0..%I expected at position %I",
                                                       (LUAI_UACINT)(d - 1), (LUAI_UACINT)j));
        if (p[i] == 0)
            distinct++;
        p[i] = 1;
    }
    if (!distinct)
        return luaL_argerror(L, 2, "a non-empty support expected");
    for (size_t i = 0; i < d; i++)
        p[i] /= (double)distinct;
    return 1;
}

void qdL_open_random(lua_State *L)
{
    static const luaL_Reg rnd[] = {
        {"unitary", l_unitary}, {"dm", l_dm}, {"mixture", l_mixture}, {"circuit", l_circuit},
        {"circuit_states", l_circuit_states}, {NULL, NULL}};
    luaL_newlib(L, rnd);
    lua_setfield(L, -2, "random");
    static const luaL_Reg fns[] = {
        {"data_clustered", l_data_clustered}, {"data_circle", l_data_circle}, {"data_xxzz", l_data_xxzz},
        {"dist_popcount", l_dist_popcount}, {"dist_uniform", l_dist_uniform}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
