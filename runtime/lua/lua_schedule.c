/* lua_schedule.c — qd.Schedule: T per-step noise strengths v_1..v_T (QuDDPM's h_t, DDPM
 * betas, depolarizing rates), made by qd.schedule.linear{T=, from=, to=}, .cosine{T=, s=},
 * .sq_cosine, .quadratic, .geometric, .piecewise{...}, .from{...} (formulas in schedule.c,
 * qd_random.h and docs/api.md). s[t] (t = 1..T), #s, s:beta(t), s:alpha_bar(t),
 * s:values(), s:clip(lo, hi), s:totable(). The values live in the userdata; the spec
 * (kind and parameters) in its user value, so s:totable() is plain JSON-able data and
 * qd.schedule.from(s:totable()) rebuilds the same values bitwise and the same spec. */
#include "lua_util.h"
#include "qd_random.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

#define QDL_SCHED "qd.Schedule"
#define MAX_T 10000000

typedef struct {
    size_t T;
    double v[];
} qdl_sched;

static qdl_sched *qdL_testschedule(lua_State *L, int idx)
{
    return luaL_testudata(L, idx, QDL_SCHED);
}

const double *qdL_schedule_values(lua_State *L, int idx, size_t *T)
{
    qdl_sched *s = qdL_testschedule(L, idx);
    if (!s)
        return NULL;
    *T = s->T;
    return s->v;
}

static qdl_sched *checksched(lua_State *L, int idx)
{
    qdl_sched *s = qdL_testschedule(L, idx);
    if (!s) {
        const char *got = luaL_getmetafield(L, idx, "__name") == LUA_TSTRING ? lua_tostring(L, -1)
                                                                            : luaL_typename(L, idx);
        luaL_argerror(L, idx, lua_pushfstring(L, "qd.Schedule expected, got %s", got));
    }
    return s;
}

/* new schedule with T values; the spec table at index spec_idx becomes its user value */
static qdl_sched *newsched(lua_State *L, size_t T, int spec_idx)
{
    spec_idx = lua_absindex(L, spec_idx);
    qdl_sched *s = lua_newuserdatauv(L, sizeof(qdl_sched) + sizeof(double) * T, 1);
    s->T = T;
    memset(s->v, 0, sizeof(double) * T);
    luaL_setmetatable(L, QDL_SCHED);
    lua_pushvalue(L, spec_idx);
    lua_setiuservalue(L, -2, 1);
    return s;
}

/* ---- option reading ---- */
static size_t optT(lua_State *L, int arg)
{
    int t = lua_getfield(L, arg, "T");
    int isint = 0;
    lua_Integer T = lua_tointegerx(L, -1, &isint);
    if (t != LUA_TNUMBER || !isint)
        luaL_argerror(L, arg, lua_pushfstring(L, "option 'T': integer number of steps expected, got %s",
                                              t == LUA_TNUMBER ? "a non-integer" : luaL_typename(L, -1)));
    if (T < 1 || T > MAX_T)
        luaL_argerror(L, arg, lua_pushfstring(L, "option 'T': 1..%d steps expected, got %I", MAX_T, (LUAI_UACINT)T));
    lua_pop(L, 1);
    return (size_t)T;
}

/* clip = {lo, hi}: returns 1 and fills lo, hi if present */
static int optclip(lua_State *L, int arg, double *lo, double *hi)
{
    int t = lua_getfield(L, arg, "clip");
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    int ok = t == LUA_TTABLE && luaL_len(L, -1) == 2;
    if (ok) {
        lua_geti(L, -1, 1);
        lua_geti(L, -2, 2);
        ok = lua_type(L, -2) == LUA_TNUMBER && lua_type(L, -1) == LUA_TNUMBER;
        *lo = lua_tonumber(L, -2);
        *hi = lua_tonumber(L, -1);
        lua_pop(L, 2);
        ok = ok && !isnan(*lo) && !isnan(*hi) && *lo <= *hi;
    }
    if (!ok)
        luaL_argerror(L, arg, "option 'clip': {lo, hi} with lo <= hi expected");
    lua_pop(L, 1);
    return 1;
}

/* spec table: {kind = kind, T = T, <numeric params>, clip = {lo, hi}?}; pushed */
static void pushspec(lua_State *L, const char *kind, size_t T, const char *const *keys,
                     const double *vals, int nkeys, int has_clip, double lo, double hi)
{
    lua_newtable(L);
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "kind");
    lua_pushinteger(L, (lua_Integer)T);
    lua_setfield(L, -2, "T");
    for (int i = 0; i < nkeys; i++) {
        lua_pushnumber(L, vals[i]);
        lua_setfield(L, -2, keys[i]);
    }
    if (has_clip) {
        lua_createtable(L, 2, 0);
        lua_pushnumber(L, lo);
        lua_rawseti(L, -2, 1);
        lua_pushnumber(L, hi);
        lua_rawseti(L, -2, 2);
        lua_setfield(L, -2, "clip");
    }
}

typedef qd_status (*ft_fn)(double *, size_t, double, double, qd_err *);

/* linear / quadratic / geometric / sq_cosine: {T=, from=, to=, clip=} */
static int make_from_to(lua_State *L, const char *kind, ft_fn fn, int allow_scale)
{
    qdL_checknargs(L, 1);
    luaL_checktype(L, 1, LUA_TTABLE);
    static const char *const opts[] = {"T", "from", "to", "clip", NULL};
    static const char *const opts_q[] = {"T", "from", "to", "scale", "clip", NULL};
    qdL_checkoptions(L, 1, allow_scale ? opts_q : opts);
    size_t T = optT(L, 1);
    double from, to;
    lua_getfield(L, 1, "scale");
    int has_scale = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (has_scale) {
        /* quadratic{T=, scale=c}: v_t = c t^2 */
        lua_getfield(L, 1, "from");
        lua_getfield(L, 1, "to");
        if (!lua_isnil(L, -1) || !lua_isnil(L, -2))
            luaL_argerror(L, 1, "either 'scale' or 'from'/'to' expected, not both");
        lua_pop(L, 2);
        double c = qdL_optnum(L, 1, "scale", 0, -INFINITY, INFINITY, QDL_REQUIRED);
        from = c;
        to = c * (double)T * (double)T;
    } else {
        from = qdL_optnum(L, 1, "from", 0, -INFINITY, INFINITY, QDL_REQUIRED);
        to = qdL_optnum(L, 1, "to", 0, -INFINITY, INFINITY, QDL_REQUIRED);
    }
    double lo = 0, hi = 0;
    int clip = optclip(L, 1, &lo, &hi);
    const char *keys[2] = {"from", "to"};
    double vals[2] = {from, to};
    pushspec(L, kind, T, keys, vals, 2, clip, lo, hi);
    qdl_sched *s = newsched(L, T, -1);
    qd_err e;
    if (fn(s->v, T, from, to, &e) != QD_OK)
        return luaL_argerror(L, 1, e.msg);
    if (clip)
        qd_schedule_clip(s->v, T, lo, hi);
    return 1;
}

static int l_linear(lua_State *L) { return make_from_to(L, "linear", qd_schedule_linear, 0); }
static int l_quadratic(lua_State *L) { return make_from_to(L, "quadratic", qd_schedule_quadratic, 1); }
static int l_geometric(lua_State *L) { return make_from_to(L, "geometric", qd_schedule_geometric, 0); }
static int l_sq_cosine(lua_State *L) { return make_from_to(L, "sq_cosine", qd_schedule_sq_cosine, 0); }

/* cosine{T=, s=0.008, max_beta=0.999, clip=} */
static int l_cosine(lua_State *L)
{
    qdL_checknargs(L, 1);
    luaL_checktype(L, 1, LUA_TTABLE);
    static const char *const opts[] = {"T", "s", "max_beta", "clip", NULL};
    qdL_checkoptions(L, 1, opts);
    size_t T = optT(L, 1);
    double off = qdL_optnum(L, 1, "s", 0.008, -INFINITY, INFINITY, 0), mb = qdL_optnum(L, 1, "max_beta", 0.999, -INFINITY, INFINITY, 0);
    double lo = 0, hi = 0;
    int clip = optclip(L, 1, &lo, &hi);
    const char *keys[2] = {"s", "max_beta"};
    double vals[2] = {off, mb};
    pushspec(L, "cosine", T, keys, vals, 2, clip, lo, hi);
    qdl_sched *s = newsched(L, T, -1);
    qd_err e;
    if (qd_schedule_cosine(s->v, T, off, mb, &e) != QD_OK)
        return luaL_argerror(L, 1, e.msg);
    if (clip)
        qd_schedule_clip(s->v, T, lo, hi);
    return 1;
}

/* deep copy of plain data (numbers, strings, booleans, tables of them) at idx; pushed.
 * Raises for functions/userdata (a spec must be JSON-able). */
static void copyplain(lua_State *L, int idx, int arg, int depth)
{
    idx = lua_absindex(L, idx);
    if (depth > 16)
        luaL_argerror(L, arg, "schedule spec nested too deeply");
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int kt = lua_type(L, -2), vt = lua_type(L, -1);
        if (depth == 0 && kt == LUA_TSTRING && strcmp(lua_tostring(L, -2), "values") == 0) {
            lua_pop(L, 1);   /* the values are not part of the spec */
            continue;
        }
        if (kt != LUA_TSTRING && kt != LUA_TNUMBER)
            luaL_argerror(L, arg, "schedule spec keys must be strings or numbers");
        if (vt == LUA_TTABLE) {
            copyplain(L, -1, arg, depth + 1);
        } else if (vt == LUA_TNUMBER || vt == LUA_TSTRING || vt == LUA_TBOOLEAN) {
            lua_pushvalue(L, -1);
        } else {
            luaL_argerror(L, arg, lua_pushfstring(L, "schedule spec values must be plain data, got %s", luaL_typename(L, -1)));
        }
        lua_pushvalue(L, -3);   /* key */
        lua_insert(L, -2);
        lua_rawset(L, -5);
        lua_pop(L, 1);          /* value */
    }
}

/* read numeric values from a qd.Vector or an array table at idx (must be non-empty,
 * finite); returns count, values into a pushed userdata buffer */
static double *readvalues(lua_State *L, int idx, int arg, const char *what, size_t *T)
{
    idx = lua_absindex(L, idx);
    qdl_array *a = qdL_testarray(L, idx);
    size_t n;
    if (a) {
        if (a->cplx)
            luaL_argerror(L, arg, lua_pushfstring(L, "%s: real qd.Vector expected, got a complex one", what));
        n = a->rows * a->cols;
    } else if (lua_istable(L, idx)) {
        lua_Integer len = luaL_len(L, idx);
        n = len > 0 ? (size_t)len : 0;
    } else {
        luaL_argerror(L, arg, lua_pushfstring(L, "%s: table of numbers or qd.Vector expected, got %s", what,
                                              luaL_typename(L, idx)));
        return NULL;
    }
    if (n < 1 || n > MAX_T)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s: 1..%d values expected, got %I", what, MAX_T, (LUAI_UACINT)n));
    double *v = lua_newuserdatauv(L, sizeof(double) * n, 0);
    for (size_t i = 0; i < n; i++) {
        if (a) {
            v[i] = ((double *)a->data)[i];
        } else {
            lua_geti(L, idx, (lua_Integer)i + 1);
            if (lua_type(L, -1) != LUA_TNUMBER)
                luaL_argerror(L, arg, lua_pushfstring(L, "%s: number expected at position %I, got %s", what,
                                                      (LUAI_UACINT)i + 1, luaL_typename(L, -1)));
            v[i] = lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
        if (!isfinite(v[i]))
            luaL_argerror(L, arg, lua_pushfstring(L, "%s: finite value expected at position %I", what, (LUAI_UACINT)i + 1));
    }
    *T = n;
    return v;
}

/* from{v1, v2, ... [, clip={lo, hi}]} | from(qd.Vector) | from(s:totable()) (a record with
 * `values`: the values are taken as they are and the rest is kept as the spec) */
static int l_from(lua_State *L)
{
    qdL_checknargs(L, 1);
    qdl_sched *src = qdL_testschedule(L, 1);
    if (src) {   /* a copy */
        lua_getiuservalue(L, 1, 1);
        qdl_sched *s = newsched(L, src->T, -1);
        memcpy(s->v, src->v, sizeof(double) * src->T);
        return 1;
    }
    if (qdL_testarray(L, 1)) {
        size_t T;
        double *v = readvalues(L, 1, 1, "values", &T);
        pushspec(L, "from", T, NULL, NULL, 0, 0, 0, 0);
        qdl_sched *s = newsched(L, T, -1);
        memcpy(s->v, v, sizeof(double) * T);
        return 1;
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_getfield(L, 1, "values") != LUA_TNIL) {
        size_t T;
        double *v = readvalues(L, -1, 1, "values", &T);
        copyplain(L, 1, 1, 0);
        int spec = lua_gettop(L);
        if (lua_getfield(L, spec, "kind") != LUA_TSTRING) {
            lua_pushliteral(L, "from");
            lua_setfield(L, spec, "kind");
        }
        lua_pop(L, 1);
        lua_pushinteger(L, (lua_Integer)T);
        lua_setfield(L, spec, "T");
        qdl_sched *s = newsched(L, T, spec);
        memcpy(s->v, v, sizeof(double) * T);
        return 1;
    }
    lua_pop(L, 1);
    /* a plain array, optionally with clip */
    lua_pushnil(L);
    lua_Integer len = luaL_len(L, 1);
    while (lua_next(L, 1)) {
        lua_pop(L, 1);
        int ok = (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1 && lua_tointeger(L, -1) <= len) ||
                 (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "clip") == 0);
        if (!ok)
            luaL_argerror(L, 1, lua_pushfstring(L, "unknown option '%s' (known: values, clip, or an array of numbers)",
                                                lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1)));
    }
    size_t T;
    double *v = readvalues(L, 1, 1, "values", &T);
    double lo = 0, hi = 0;
    int clip = optclip(L, 1, &lo, &hi);
    pushspec(L, "from", T, NULL, NULL, 0, clip, lo, hi);
    qdl_sched *s = newsched(L, T, -1);
    memcpy(s->v, v, sizeof(double) * T);
    if (clip)
        qd_schedule_clip(s->v, T, lo, hi);
    return 1;
}

/* pushes s:totable() without values (the spec, deep-copied) */
static void pushspeccopy(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_getiuservalue(L, idx, 1);
    copyplain(L, -1, idx, 0);
    lua_remove(L, -2);
}

/* piecewise{s1, s2, ...}: the concatenation (each a qd.Schedule or an array of numbers).
 * Each part is read once: its values (a schedule's own buffer, or a copy of a table's) and
 * count are kept, and the concatenation copies exactly those counts. */
typedef struct {
    const double *v;
    size_t T;
} piece;

static int l_piecewise(lua_State *L)
{
    qdL_checknargs(L, 1);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer np = qdL_checklen(L, 1, 1, MAX_T, "list of schedules");
    if (np < 1)
        return luaL_argerror(L, 1, "non-empty list of schedules expected");
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > np)
            luaL_argerror(L, 1, "a list of schedules expected (no other keys)");
    }
    size_t T = 0;
    piece *pc = qdL_scratch(L, (size_t)np, sizeof(piece), "piecewise parts");
    lua_newtable(L);   /* parts (specs) */
    int parts = lua_gettop(L);
    lua_newtable(L);   /* keeps every part's values alive */
    int keep = lua_gettop(L);
    for (lua_Integer i = 1; i <= np; i++) {
        lua_geti(L, 1, i);
        qdl_sched *p = qdL_testschedule(L, -1);
        size_t Ti;
        if (p) {
            Ti = p->T;
            pc[i - 1].v = p->v;
            lua_pushvalue(L, -1);
            lua_rawseti(L, keep, i);
            pushspeccopy(L, -1);
        } else if (lua_istable(L, -1) || qdL_testarray(L, -1)) {
            char what[48];
            snprintf(what, sizeof what, "part %d", (int)i);
            pc[i - 1].v = readvalues(L, -1, 1, what, &Ti);
            lua_rawseti(L, keep, i);   /* the values buffer */
            pushspec(L, "from", Ti, NULL, NULL, 0, 0, 0, 0);
        } else {
            return luaL_argerror(L, 1, lua_pushfstring(L, "qd.Schedule or table of numbers expected at position %d, got %s",
                                                       (int)i, luaL_typename(L, -1)));
        }
        pc[i - 1].T = Ti;
        lua_rawseti(L, parts, i);
        lua_pop(L, 1);
        T += Ti;
        if (T > MAX_T)
            return luaL_argerror(L, 1, "too many steps in total");
    }
    lua_newtable(L);
    lua_pushliteral(L, "piecewise");
    lua_setfield(L, -2, "kind");
    lua_pushinteger(L, (lua_Integer)T);
    lua_setfield(L, -2, "T");
    lua_pushvalue(L, parts);
    lua_setfield(L, -2, "parts");
    qdl_sched *s = newsched(L, T, -1);
    size_t off = 0;
    for (lua_Integer i = 0; i < np; i++) {
        memcpy(s->v + off, pc[i].v, sizeof(double) * pc[i].T);
        off += pc[i].T;
    }
    return 1;
}

/* ---- methods ---- */
static size_t checkstep(lua_State *L, qdl_sched *s, int arg, size_t lo)
{
    int isint = 0;
    lua_Integer t = lua_tointegerx(L, arg, &isint);
    if (!isint)
        luaL_argerror(L, arg, lua_pushfstring(L, "integer step expected, got %s",
                                              lua_type(L, arg) == LUA_TNUMBER ? "a non-integer" : luaL_typename(L, arg)));
    if (t < (lua_Integer)lo || (size_t)t > s->T)
        luaL_argerror(L, arg, lua_pushfstring(L, "step %d..%I expected, got %I", (int)lo, (LUAI_UACINT)s->T, (LUAI_UACINT)t));
    return (size_t)t;
}

/* s:beta(t) = v_t (t = 1..T) */
static int m_beta(lua_State *L)
{
    qdl_sched *s = checksched(L, 1);
    qdL_checknargs(L, 2);
    lua_pushnumber(L, s->v[checkstep(L, s, 2, 1) - 1]);
    return 1;
}

/* s:alpha(t) = 1 - v_t */
static int m_alpha(lua_State *L)
{
    qdl_sched *s = checksched(L, 1);
    qdL_checknargs(L, 2);
    lua_pushnumber(L, 1.0 - s->v[checkstep(L, s, 2, 1) - 1]);
    return 1;
}

/* s:alpha_bar(t) = prod_{u <= t} (1 - v_u), t = 0..T */
static int m_alpha_bar(lua_State *L)
{
    qdl_sched *s = checksched(L, 1);
    qdL_checknargs(L, 2);
    lua_pushnumber(L, qd_schedule_alpha_bar(s->v, checkstep(L, s, 2, 0)));
    return 1;
}

static int m_values(lua_State *L)
{
    qdl_sched *s = checksched(L, 1);
    qdL_checknargs(L, 1);
    qdl_array *a = qdL_newarray(L, s->T, 1, 0, 1);
    memcpy(a->data, s->v, sizeof(double) * s->T);
    return 1;
}

static int m_totable(lua_State *L)
{
    qdl_sched *s = checksched(L, 1);
    qdL_checknargs(L, 1);
    pushspeccopy(L, 1);
    lua_createtable(L, (int)s->T, 0);
    for (size_t i = 0; i < s->T; i++) {
        lua_pushnumber(L, s->v[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "values");
    return 1;
}

/* s:clip(lo, hi) -> a new schedule with values clamped into [lo, hi] */
static int m_clip(lua_State *L)
{
    qdl_sched *s = checksched(L, 1);
    qdL_checknargs(L, 3);
    double lo = luaL_checknumber(L, 2), hi = luaL_checknumber(L, 3);
    if (isnan(lo) || isnan(hi) || lo > hi)
        return luaL_argerror(L, 3, "bounds with lo <= hi expected");
    pushspeccopy(L, 1);
    lua_createtable(L, 2, 0);
    lua_pushnumber(L, lo);
    lua_rawseti(L, -2, 1);
    lua_pushnumber(L, hi);
    lua_rawseti(L, -2, 2);
    lua_setfield(L, -2, "clip");
    qdl_sched *c = newsched(L, s->T, -1);
    memcpy(c->v, s->v, sizeof(double) * s->T);
    qd_schedule_clip(c->v, c->T, lo, hi);
    return 1;
}

static int mm_index(lua_State *L)
{
    qdl_sched *s = checksched(L, 1);
    if (lua_type(L, 2) == LUA_TNUMBER) {
        lua_pushnumber(L, s->v[checkstep(L, s, 2, 1) - 1]);
        return 1;
    }
    if (lua_type(L, 2) == LUA_TSTRING) {
        const char *k = lua_tostring(L, 2);
        if (strcmp(k, "T") == 0) {
            lua_pushinteger(L, (lua_Integer)s->T);
            return 1;
        }
        if (strcmp(k, "kind") == 0) {
            lua_getiuservalue(L, 1, 1);
            lua_getfield(L, -1, "kind");
            return 1;
        }
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
}

static int mm_len(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)checksched(L, 1)->T);
    return 1;
}

static int mm_eq(lua_State *L)
{
    qdl_sched *a = qdL_testschedule(L, 1), *b = qdL_testschedule(L, 2);
    lua_pushboolean(L, a && b && a->T == b->T && memcmp(a->v, b->v, sizeof(double) * a->T) == 0);
    return 1;
}

static int mm_tostring(lua_State *L)
{
    qdl_sched *s = checksched(L, 1);
    lua_getiuservalue(L, 1, 1);
    lua_getfield(L, -1, "kind");
    const char *kind = lua_isstring(L, -1) ? lua_tostring(L, -1) : "?";
    char buf[160];
    if (s->T <= 4) {
        int o = snprintf(buf, sizeof buf, "qd.Schedule(%s, T=%zu:", kind, s->T);
        for (size_t i = 0; i < s->T && o < (int)sizeof buf; i++)
            o += snprintf(buf + o, sizeof buf - (size_t)o, " %.6g", s->v[i]);
        if (o < (int)sizeof buf)
            snprintf(buf + o, sizeof buf - (size_t)o, ")");
    } else {
        snprintf(buf, sizeof buf, "qd.Schedule(%s, T=%zu: %.6g %.6g ... %.6g)", kind, s->T, s->v[0], s->v[1],
                 s->v[s->T - 1]);
    }
    lua_pushstring(L, buf);
    return 1;
}

void qdL_open_schedule(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"beta", m_beta}, {"alpha", m_alpha}, {"alpha_bar", m_alpha_bar}, {"values", m_values},
        {"totable", m_totable}, {"clip", m_clip}, {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__len", mm_len}, {"__eq", mm_eq}, {"__tostring", mm_tostring}, {NULL, NULL}};
    qdL_newclass(L, QDL_SCHED, methods, mm_index, meta);
    lua_pop(L, 1);
    static const luaL_Reg fns[] = {
        {"linear", l_linear}, {"cosine", l_cosine}, {"sq_cosine", l_sq_cosine},
        {"quadratic", l_quadratic}, {"geometric", l_geometric}, {"piecewise", l_piecewise},
        {"from", l_from}, {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_setfield(L, -2, "schedule");
}
