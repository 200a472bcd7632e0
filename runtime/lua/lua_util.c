/* lua_util.c — shared binding helpers: GC-aware allocation, checked accessors, argument
 * validation with one consistent wording ("bad argument #k to 'f' (X expected, got Y)"). */
#include "lua_util.h"
#include <string.h>
#include <stdio.h>
#include <math.h>

/* ------------------------------------------------------------------ allocation
 * Lua's GC does not see our big buffers (only the small userdata headers), so a loop
 * creating states could run the machine out of memory while Lua thinks little is in use.
 * As in Torch, we count live buffer bytes and force a full collection when they pass a
 * soft cap that grows with what survives. */
static size_t g_live = 0;
/* qd buffers allocated between forced collections, at least (see qdL_alloc_try) */
#define QDL_GC_FLOOR ((size_t)4 << 20)
static size_t g_cap = QDL_GC_FLOOR;

static void no_memory(lua_State *L, size_t bytes, const char *what)
{
    char sz[32];
    qd_format_bytes((double)bytes, sz, sizeof sz);
    luaL_error(L, "not enough memory for %s (%s requested)", what, sz);
}

/* qdL_nomem(L, bytes, what): raise qdL_alloc's "not enough memory" error */
void qdL_nomem(lua_State *L, size_t bytes, const char *what)
{
    no_memory(L, bytes, what);
}

/* qdL_alloc_try: qdL_alloc returning NULL (bytes > 0) where qdL_alloc raises, so that a
 * caller formats its description only on failure (then qdL_nomem) — allocation sits on
 * hot paths (a qd.Vector per training step), snprintf costs as much as the malloc.
 * (Prototype in the callers, like lua_array.c; physical memory is read once, mem.c.) */
void *qdL_alloc_try(lua_State *L, size_t bytes, int zero)
{
    /* Refuse what cannot fit in the memory available now (after collecting garbage, which
     * may free other qd buffers): malloc would succeed (overcommit) and the process be
     * killed later, while touching the pages, instead of raising an error. */
    size_t phys = qd_phys_mem();
    if (phys && bytes > phys)
        return NULL;
    if (bytes >= ((size_t)64 << 20)) {
        size_t avail = qd_avail_mem();
        if (avail && bytes > avail) {
            lua_gc(L, LUA_GCCOLLECT);
            avail = qd_avail_mem();
            if (avail && bytes > avail)
                return NULL;
        }
    }
    if (g_live + bytes > g_cap) {
        lua_gc(L, LUA_GCCOLLECT);
        /* next collection when the live buffers have doubled, or after QDL_GC_FLOOR of new
         * buffers, or after 8 times Lua's own heap (a collection costs in proportion to
         * that heap): garbage buffers go back to malloc soon, and the next ones reuse their
         * memory while it is still in cache, instead of faulting in fresh pages */
        size_t want = 2 * (g_live + bytes);
        size_t heap8 = 8 * 1024 * (size_t)lua_gc(L, LUA_GCCOUNT);
        size_t floor = g_live + bytes + (heap8 > QDL_GC_FLOOR ? heap8 : QDL_GC_FLOOR);
        g_cap = want > floor ? want : floor;
    }
    void *p = zero ? qd_calloc(1, bytes) : qd_malloc(bytes);
    if (!p && bytes) {
        lua_gc(L, LUA_GCCOLLECT);
        p = zero ? qd_calloc(1, bytes) : qd_malloc(bytes);
        if (!p)
            return NULL;
    }
    g_live += bytes;
    return p;
}

void *qdL_alloc(lua_State *L, size_t bytes, int zero, const char *what)
{
    void *p = qdL_alloc_try(L, bytes, zero);
    if (!p && bytes)
        no_memory(L, bytes, what);
    return p;
}

void qdL_release(void *p, size_t bytes)
{
    if (p) {
        qd_free(p);
        g_live = g_live >= bytes ? g_live - bytes : 0;
    }
}

/* "16 EiB" for 2^e bytes; beyond what a double formats sensibly, "2^e B" */
static void pow2_bytes(int e, char *buf, size_t len)
{
    if (e <= 86)
        qd_format_bytes(ldexp(1.0, e), buf, len);
    else
        snprintf(buf, len, "2^%d B", e);
}

size_t qdL_amp_bytes(lua_State *L, int nq, size_t count, const char *what)
{
    size_t b;
    if (qd_amp_bytes(nq, count, &b)) {
        if (count == 1) {
            char sz[48];
            pow2_bytes(nq + 4, sz, sizeof sz);
            luaL_error(L, "not enough memory for %s (%s requested)", what, sz);
        }
        luaL_error(L, "not enough memory for %s (size overflows)", what);
    }
    return b;
}

/* ------------------------------------------------------------------ registers */
static const char *const kind_mt[] = {QDL_STATE, QDL_DM, QDL_ENS};

const char *qdL_kindname(qdl_kind kind)
{
    return kind_mt[kind];
}

static qdl_reg *newreg(lua_State *L, qdl_kind kind, int n, size_t count, int zero);

qdl_reg *qdL_newreg(lua_State *L, qdl_kind kind, int n, size_t count)
{
    return newreg(L, kind, n, count, 1);
}

/* the same with the amplitudes left uninitialised: only for a caller that writes all of them
 * before anything can fail or reach Lua */
qdl_reg *qdL_newreg_uninit(lua_State *L, qdl_kind kind, int n, size_t count)
{
    return newreg(L, kind, n, count, 0);
}

/* "a 3-qubit state" etc., for error messages (formatted only when one is raised) */
static void reg_what(qdl_kind kind, int n, size_t count, char *what, size_t len)
{
    if (kind == QDL_K_STATE)
        snprintf(what, len, "a %d-qubit state", n);
    else if (kind == QDL_K_DM)
        snprintf(what, len, "a %d-qubit density matrix", n);
    else
        snprintf(what, len, "an ensemble of %zu %d-qubit states", count, n);
}

static qdl_reg *newreg(lua_State *L, qdl_kind kind, int n, size_t count, int zero)
{
    char what[96];
    size_t bytes;
    int nq = kind == QDL_K_DM ? 2 * n : n;   /* a density matrix holds 4^n amplitudes */
    size_t cnt = kind == QDL_K_ENS ? count : 1;
    if (qd_amp_bytes(nq, cnt, &bytes)) {
        /* too big: raise, naming the object (described only here, off the common path) */
        reg_what(kind, n, count, what, sizeof what);
        if (kind == QDL_K_DM && 2 * n > QD_MAX_QUBITS) {
            char sz[48];
            pow2_bytes(2 * n + 4, sz, sizeof sz);   /* 4^n amplitudes of 16 bytes */
            luaL_error(L, "not enough memory for %s (%s requested)", what, sz);
        }
        bytes = qdL_amp_bytes(L, nq, cnt, what);   /* raises */
    }
    /* the object is valid (empty) before anything can fail */
    qdl_reg *r = lua_newuserdatauv(L, sizeof *r, 1);
    r->kind = kind;
    r->n = n;
    r->count = kind == QDL_K_ENS ? count : 1;
    r->a = NULL;
    r->bytes = 0;
    luaL_setmetatable(L, kind_mt[kind]);
    r->a = qdL_alloc_try(L, bytes, zero);
    if (!r->a && bytes) {
        reg_what(kind, n, count, what, sizeof what);
        no_memory(L, bytes, what);
    }
    r->bytes = bytes;
    return r;
}

qdl_reg *qdL_testkind(lua_State *L, int idx, qdl_kind kind)
{
    return luaL_testudata(L, idx, kind_mt[kind]);
}

static int typeerror(lua_State *L, int arg, const char *expected)
{
    const char *got;
    if (luaL_getmetafield(L, arg, "__name") == LUA_TSTRING)
        got = lua_tostring(L, -1);
    else
        got = luaL_typename(L, arg);
    return luaL_argerror(L, arg, lua_pushfstring(L, "%s expected, got %s", expected, got));
}

static qdl_reg *live(lua_State *L, int idx, qdl_reg *r)
{
    if (!r->a)
        luaL_argerror(L, idx, lua_pushfstring(L, "%s has been freed", kind_mt[r->kind]));
    return r;
}

qdl_reg *qdL_checkreg(lua_State *L, int idx)
{
    for (int k = 0; k < 3; k++) {
        qdl_reg *r = luaL_testudata(L, idx, kind_mt[k]);
        if (r)
            return live(L, idx, r);
    }
    typeerror(L, idx, "qd.State, qd.DensityMatrix or qd.Ensemble");
    return NULL;
}

qdl_reg *qdL_checkkind(lua_State *L, int idx, qdl_kind kind)
{
    qdl_reg *r = luaL_testudata(L, idx, kind_mt[kind]);
    if (!r)
        typeerror(L, idx, kind_mt[kind]);
    return live(L, idx, r);
}

void qdL_reg_free(qdl_reg *r)
{
    qdL_release(r->a, r->bytes);
    r->a = NULL;
    r->bytes = 0;
}

/* self of a metamethod or of :free(): one of the three register types, freed or not
 * (a metamethod called by hand with another value raises instead of reading it) */
static qdl_reg *reg_self(lua_State *L)
{
    for (int k = 0; k < 3; k++) {
        qdl_reg *r = luaL_testudata(L, 1, kind_mt[k]);
        if (r)
            return r;
    }
    typeerror(L, 1, "qd.State, qd.DensityMatrix or qd.Ensemble");
    return NULL;
}

static int reg_gc(lua_State *L)
{
    qdL_reg_free(reg_self(L));
    return 0;
}

static int reg_free(lua_State *L)
{
    qdL_checknargs(L, 1);
    reg_gc(L);
    return 0;
}

/* s.n, s.dim, E.N as fields; methods otherwise; an unknown key is nil as for tables */
/* Common other spellings of a method: cnot, toffoli, fredkin, cphase, phase, u3, and any
 * name in capitals (CX, H, RZ). With the value on top nil (a method not found), replaces it
 * by methods[alias] when there is one. methods: the index of the methods table. */
void qdL_method_alias(lua_State *L, int methods, const char *key)
{
    static const char *const alias[][2] = {{"cnot", "cx"},     {"toffoli", "ccx"}, {"fredkin", "cswap"},
                                           {"cphase", "cp"},   {"phase", "p"},     {"u3", "u"},
                                           {"cz_gate", "cz"},  {NULL, NULL}};
    char low[32];
    size_t n = strlen(key);
    methods = lua_absindex(L, methods);
    if (n == 0 || n >= sizeof low)
        return;
    for (size_t i = 0; i <= n; i++)
        low[i] = (char)(key[i] >= 'A' && key[i] <= 'Z' ? key[i] - 'A' + 'a' : key[i]);
    const char *to = strcmp(low, key) != 0 ? low : NULL;
    for (int i = 0; alias[i][0]; i++)
        if (strcmp(low, alias[i][0]) == 0)
            to = alias[i][1];
    if (!to)
        return;
    lua_pop(L, 1);
    lua_getfield(L, methods, to);
}

/* E[k] = s sets member k (as E:set(k, s)); any other assignment to a qd object is an error
 * that says how objects change */
static int reg_newindex(lua_State *L)
{
    qdl_reg *r = reg_self(L);
    if (r->kind == QDL_K_ENS && lua_type(L, 2) == LUA_TNUMBER) {
        luaL_getmetafield(L, 1, "methods");
        lua_getfield(L, -1, "set");
        lua_pushvalue(L, 1);
        lua_pushvalue(L, 2);
        lua_pushvalue(L, 3);
        lua_call(L, 3, 0);
        return 0;
    }
    return luaL_error(L, "cannot assign to %s%s%s of a %s (objects change through their methods; "
                         "help(obj) lists them%s)",
                      lua_type(L, 2) == LUA_TSTRING ? "field '" : "an index", lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "",
                      lua_type(L, 2) == LUA_TSTRING ? "'" : "", kind_mt[r->kind],
                      r->kind == QDL_K_ENS ? "; E[k] = s sets member k" : "");
}

static int reg_index(lua_State *L)
{
    qdl_reg *r = reg_self(L);
    if (lua_type(L, 2) == LUA_TSTRING) {
        const char *key = lua_tostring(L, 2);
        if (strcmp(key, "n") == 0) {
            lua_pushinteger(L, r->n);
            return 1;
        }
        if (strcmp(key, "dim") == 0) {
            lua_pushinteger(L, (lua_Integer)1 << r->n);
            return 1;
        }
        if (strcmp(key, "N") == 0 && r->kind == QDL_K_ENS) {
            lua_pushinteger(L, (lua_Integer)r->count);
            return 1;
        }
    }
    lua_pushvalue(L, lua_upvalueindex(1));   /* methods table */
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    if (lua_isnil(L, -1) && lua_type(L, 2) == LUA_TSTRING)
        qdL_method_alias(L, -2, lua_tostring(L, 2));
    if (lua_isnil(L, -1) && r->kind == QDL_K_ENS && lua_type(L, 2) == LUA_TNUMBER) {
        /* E[k]: a copy of member k, handled by the ensemble's "get" method (k may be a
         * float with an integral value, as E[N / 2]) */
        int isint = 0;
        lua_Integer k = lua_tointegerx(L, 2, &isint);
        if (!isint)
            return luaL_error(L, "ensemble member 1..%I expected, got non-integer %f", (LUAI_UACINT)r->count,
                              lua_tonumber(L, 2));
        if (!r->a)
            return luaL_error(L, "qd.Ensemble has been freed");
        if (k < 1 || (size_t)k > r->count)
            return luaL_error(L, "ensemble member 1..%I expected, got %I", (LUAI_UACINT)r->count,
                              (LUAI_UACINT)k);
        lua_getfield(L, -2, "get");
        lua_pushvalue(L, 1);
        lua_pushinteger(L, k);
        lua_call(L, 2, 1);
    }
    return 1;
}

static int reg_len(lua_State *L)
{
    qdl_reg *r = qdL_checkreg(L, 1);
    if (r->kind == QDL_K_ENS)
        lua_pushinteger(L, (lua_Integer)r->count);
    else
        lua_pushinteger(L, (lua_Integer)1 << r->n);
    return 1;
}

static int reg_tostring(lua_State *L)
{
    qdl_reg *r = reg_self(L);
    if (!r->a) {
        lua_pushfstring(L, "%s (freed)", kind_mt[r->kind]);
        return 1;
    }
    qdL_reg_tostring(L, r);
    return 1;
}

void qdL_reg_metatable(lua_State *L, qdl_kind kind, const luaL_Reg *methods)
{
    static const luaL_Reg meta[] = {{"__gc", reg_gc},   {"__close", reg_gc}, {"__len", reg_len},
                                    {"__tostring", reg_tostring}, {"__newindex", reg_newindex},
                                    {NULL, NULL}};
    qdL_newclass(L, kind_mt[kind], methods, reg_index, meta);
    qdL_add_gate_methods(L);   /* a method per gate, from the registry */
    lua_pushcfunction(L, reg_free);
    lua_setfield(L, -2, "free");
    lua_pop(L, 1);
}

/* ------------------------------------------------------------------ arguments */
void qdL_checknargs(lua_State *L, int last)
{
    if (lua_gettop(L) > last)
        luaL_argerror(L, last + 1, "unexpected extra argument");
}

static lua_Integer checkint(lua_State *L, int arg, const char *what)
{
    int isnum = 0;
    lua_Integer v = lua_tointegerx(L, arg, &isnum);
    if (!isnum) {
        if (lua_type(L, arg) == LUA_TNUMBER)
            luaL_argerror(L, arg, lua_pushfstring(L, "%s expected, got non-integer %f", what,
                                                  lua_tonumber(L, arg)));
        typeerror(L, arg, what);
    }
    return v;
}

int qdL_checkqubit(lua_State *L, int arg, int n)
{
    lua_Integer q = checkint(L, arg, "qubit index");
    if (q < 0 || q >= n)
        luaL_argerror(L, arg, lua_pushfstring(L, "qubit index 0..%d expected, got %d", n - 1,
                                              (int)(q > 1000000 ? 1000000 : q < -1000000 ? -1000000 : q)));
    return (int)q;
}

int qdL_checkqubits(lua_State *L, int arg, int n, int *qs, int opt)
{
    int k = 0;
    if (opt && lua_isnoneornil(L, arg)) {
        for (int i = 0; i < n; i++)
            qs[i] = i;
        return n;
    }
    if (lua_isinteger(L, arg)) {
        qs[0] = qdL_checkqubit(L, arg, n);
        return 1;
    }
    if (!lua_istable(L, arg))
        typeerror(L, arg, "qubit list (table of integers)");
    lua_Integer len = luaL_len(L, arg);
    if (len < 1 || len > n)
        luaL_argerror(L, arg, lua_pushfstring(L, "1..%d qubits expected, got %d", n, (int)(len > 1000000 ? 1000000 : len)));
    for (lua_Integer i = 1; i <= len; i++) {
        lua_geti(L, arg, i);
        int isnum = 0;
        lua_Integer q = lua_tointegerx(L, -1, &isnum);
        lua_pop(L, 1);
        if (!isnum || q < 0 || q >= n)
            luaL_argerror(L, arg, lua_pushfstring(L, "qubit indices 0..%d expected, got %s at position %d",
                                                  n - 1, isnum ? lua_pushfstring(L, "%d", (int)q) : "a non-integer", (int)i));
        for (int j = 0; j < k; j++)
            if (qs[j] == q)
                luaL_argerror(L, arg, lua_pushfstring(L, "distinct qubits expected, got qubit %d twice", (int)q));
        qs[k++] = (int)q;
    }
    return k;
}

int qdL_checknqubits(lua_State *L, int arg, int maxq)
{
    lua_Integer n = checkint(L, arg, "number of qubits");
    if (n < 1)
        luaL_argerror(L, arg, lua_pushfstring(L, "number of qubits >= 1 expected, got %d", (int)(n < -1000000 ? -1000000 : n)));
    if (n > maxq) {
        /* too big to even describe: report the memory it would need (2^n amplitudes of
         * 16 bytes) */
        char sz[48];
        if (n <= 1000)
            pow2_bytes((int)n + 4, sz, sizeof sz);
        else
            snprintf(sz, sizeof sz, "more than 2^1000 B");
        luaL_error(L, "not enough memory for a %I-qubit state (%s requested)", (LUAI_UACINT)n, sz);
    }
    return (int)n;
}

size_t qdL_checkcount(lua_State *L, int arg, const char *what)
{
    lua_Integer v = checkint(L, arg, what);
    if (v < 1)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s >= 1 expected, got %I", what, (LUAI_UACINT)v));
    return (size_t)v;
}

void qdL_checkoptions(lua_State *L, int arg, const char *const *allowed)
{
    if (lua_isnoneornil(L, arg))
        return;
    if (!lua_istable(L, arg))
        typeerror(L, arg, "options table");
    lua_pushnil(L);
    while (lua_next(L, arg)) {
        lua_pop(L, 1);
        int ok = 0;
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *key = lua_tostring(L, -1);
            for (int i = 0; allowed[i]; i++)
                if (strcmp(key, allowed[i]) == 0)
                    ok = 1;
        }
        if (!ok) {
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (int i = 0; allowed[i]; i++) {
                if (i)
                    luaL_addstring(&b, ", ");
                luaL_addstring(&b, allowed[i]);
            }
            luaL_pushresult(&b);
            const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : luaL_typename(L, -2);
            luaL_argerror(L, arg, lua_pushfstring(L, "unknown option '%s' (known: %s)", key,
                                                  lua_tostring(L, -1)));
        }
    }
}

int qdL_optbool(lua_State *L, int arg, const char *key, int def)
{
    if (lua_isnoneornil(L, arg))
        return def;
    int t = lua_getfield(L, arg, key);
    int v = def;
    if (t == LUA_TBOOLEAN)
        v = lua_toboolean(L, -1);
    else if (t != LUA_TNIL)
        luaL_argerror(L, arg, lua_pushfstring(L, "option '%s': boolean expected, got %s", key,
                                              luaL_typename(L, -1)));
    lua_pop(L, 1);
    return v;
}

int qdL_tocomplex(lua_State *L, int idx, qd_c *z)
{
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) == LUA_TNUMBER) {
        *z = lua_tonumber(L, idx);
        return 1;
    }
    if (lua_istable(L, idx) && luaL_len(L, idx) == 2) {
        lua_geti(L, idx, 1);
        lua_geti(L, idx, 2);
        int ok = lua_type(L, -1) == LUA_TNUMBER && lua_type(L, -2) == LUA_TNUMBER;
        if (ok)
            *z = lua_tonumber(L, -2) + I * lua_tonumber(L, -1);
        lua_pop(L, 2);
        return ok;
    }
    return 0;
}

void qdL_pushcomplex(lua_State *L, qd_c z)
{
    lua_pushnumber(L, creal(z));
    lua_pushnumber(L, cimag(z));
}

size_t qdL_checkcmatrix(lua_State *L, int arg, qd_c **out)
{
    *out = NULL;
    arg = lua_absindex(L, arg);
    qdl_array *A = qdL_testarray(L, arg);
    if (A) {
        if (A->rows != A->cols || A->rows == 0)
            luaL_argerror(L, arg, lua_pushfstring(L, "square matrix expected, got %dx%d",
                                                  (int)A->rows, (int)A->cols));
        size_t d = A->rows;
        qd_c *m = lua_newuserdatauv(L, sizeof(qd_c) * d * d, 0);
        for (size_t i = 0; i < d * d; i++)
            m[i] = qdL_array_get(A, i);
        *out = m;
        return d;
    }
    if (!lua_istable(L, arg))
        typeerror(L, arg, "matrix (qd.Matrix or table of rows)");
    lua_Integer d = luaL_len(L, arg);
    if (d < 1 || d > 4096)
        luaL_argerror(L, arg, "non-empty matrix expected");
    qd_c *m = lua_newuserdatauv(L, sizeof(qd_c) * (size_t)(d * d), 0);
    for (lua_Integer r = 1; r <= d; r++) {
        if (lua_geti(L, arg, r) != LUA_TTABLE || luaL_len(L, -1) != d)
            luaL_argerror(L, arg, lua_pushfstring(L, "square matrix expected (row %d of %d does not have %d entries)",
                                                  (int)r, (int)d, (int)d));
        for (lua_Integer c = 1; c <= d; c++) {
            lua_geti(L, -1, c);
            qd_c z;
            if (!qdL_tocomplex(L, -1, &z))
                luaL_argerror(L, arg, lua_pushfstring(L, "number or {re, im} expected at [%d][%d]",
                                                      (int)r, (int)c));
            m[(r - 1) + (c - 1) * d] = z;
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    *out = m;
    return (size_t)d;
}

int qdL_raise(lua_State *L, const qd_err *e)
{
    return luaL_error(L, "%s", e->msg);
}

void qdL_bits(size_t idx, int k, char *buf)
{
    for (int j = 0; j < k; j++)
        buf[j] = ((idx >> (k - 1 - j)) & 1) ? '1' : '0';
    buf[k] = '\0';
}

void qdL_add_reg_method(lua_State *L, const char *name, lua_CFunction fn)
{
    const char *regs[] = {QDL_STATE, QDL_DM, QDL_ENS};
    for (int i = 0; i < 3; i++) {
        luaL_getmetatable(L, regs[i]);
        if (lua_getfield(L, -1, "methods") == LUA_TTABLE) {
            lua_pushcfunction(L, fn);
            lua_setfield(L, -2, name);
        }
        lua_pop(L, 2);
    }
}

/* ------------------------------------------------------------------ lengths and scratch */
lua_Integer qdL_checklen(lua_State *L, int arg, int idx, lua_Integer max, const char *what)
{
    /* luaL_len runs __len once; the result is validated here and never re-read */
    lua_Integer n = luaL_len(L, idx);
    if (n < 0 || n > max)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s: length 0..%I expected, got %I", what, (LUAI_UACINT)max,
                                              (LUAI_UACINT)n));
    return n;
}

void *qdL_scratch(lua_State *L, size_t count, size_t size, const char *what)
{
    size_t bytes;
    if (qd_mul_overflow(count, size, &bytes))
        luaL_error(L, "not enough memory for %s (size overflows)", what);
    size_t phys = qd_phys_mem();
    if (phys && bytes > phys)
        no_memory(L, bytes, what);
    return lua_newuserdatauv(L, bytes ? bytes : 1, 0);
}

/* ------------------------------------------------------------------ value checks
 * What may become a State, an Ensemble member or a DensityMatrix (docs/api.md "Value
 * checks"): finite; a pure state normalised, | |psi|^2 - 1 | <= tol; a density matrix
 * Hermitian (max |rho - rho^dagger| <= tol), of unit trace (|Tr rho - 1| <= tol) and PSD
 * (smallest eigenvalue >= -tol, LAPACK zheev). The problem is described in msg. */
int qdL_amps_problem(const qd_c *a, int n, size_t count, double tol, char *msg, size_t len)
{
    size_t d = (size_t)1 << n;
    for (size_t k = 0; k < count; k++) {
        const qd_c *v = a + k * d;
        char who[48] = "";
        if (count > 1)
            snprintf(who, sizeof who, "member %zu: ", k + 1);
        for (size_t i = 0; i < d; i++)
            if (!isfinite(creal(v[i])) || !isfinite(cimag(v[i]))) {
                snprintf(msg, len, "%sfinite amplitudes expected (position %zu)", who, i + 1);
                return 1;
            }
        double n2 = qd_norm2(v, d);
        if (!(fabs(n2 - 1) <= tol)) {
            snprintf(msg, len, "%snormalised amplitudes expected (squared norm %.17g, off by %.3g > %.0e)", who, n2,
                     fabs(n2 - 1), tol);
            return 1;
        }
    }
    return 0;
}

void qdL_check_amps(lua_State *L, int arg, qd_c *a, int n, size_t count, int normalize)
{
    size_t d = (size_t)1 << n;
    char msg[160];
    if (qdL_amps_problem(a, n, count, normalize >= 0 ? INFINITY : QDL_NORM_TOL, msg, sizeof msg))
        luaL_argerror(L, arg, msg);
    if (normalize <= 0)
        return;
    for (size_t k = 0; k < count; k++) {
        qd_c *v = a + k * d;
        double nrm = sqrt(qd_norm2(v, d));
        if (!(nrm > 0) || !isfinite(nrm)) {
            if (count > 1)
                snprintf(msg, sizeof msg, "member %zu: amplitudes of norm %g cannot be normalised", k + 1, nrm);
            else
                snprintf(msg, sizeof msg, "amplitudes of norm %g cannot be normalised", nrm);
            luaL_argerror(L, arg, msg);
        }
        for (size_t i = 0; i < d; i++)
            v[i] /= nrm;
    }
}

int qdL_dm_problem(const qd_c *m, int n, double tol, char *msg, size_t len)
{
    size_t d = (size_t)1 << n;
    double herm = 0, tr = 0;
    for (size_t i = 0; i < d; i++) {
        tr += creal(m[i + i * d]);
        for (size_t j = 0; j < d; j++) {
            double x = cabs(m[i + j * d] - conj(m[j + i * d]));
            if (!(x <= herm))
                herm = isnan(x) ? INFINITY : x;
        }
    }
    if (!(herm <= tol) || !(fabs(tr - 1) <= tol)) {
        snprintf(msg, len, "density matrix expected (Hermitian, trace 1): max |rho - rho^dagger| = %g, trace = %.17g",
                 herm, tr);
        return 1;
    }
    /* positivity via the eigenvalues (of a copy: zheev overwrites its input) */
    qd_c *tmp = qd_malloc(sizeof(qd_c) * d * d);
    double *w = qd_malloc(sizeof(double) * d);
    qd_err e;
    qd_status st = (!tmp || !w) ? qd_fail(&e, QD_ENOMEM, "not enough memory for a positivity check") : QD_OK;
    if (st == QD_OK) {
        memcpy(tmp, m, sizeof(qd_c) * d * d);
        st = qd_la_eigh(tmp, d, w, 0, &e);
    }
    double minev = st == QD_OK ? w[0] : 0;
    qd_free(tmp);
    qd_free(w);
    if (st != QD_OK) {
        snprintf(msg, len, "%s", e.msg);
        return 1;
    }
    if (minev < -tol) {
        snprintf(msg, len, "positive semidefinite matrix expected (smallest eigenvalue %g)", minev);
        return 1;
    }
    return 0;
}

void qdL_check_dm(lua_State *L, int arg, const qd_c *rho, int n)
{
    char msg[200];
    if (qdL_dm_problem(rho, n, QDL_NORM_TOL, msg, sizeof msg))
        luaL_argerror(L, arg, msg);
}

/* x as %.14g (lua_pushfstring's %f prints 6 decimals), pushed */
static const char *numtext(lua_State *L, double x)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%.14g", x);
    return lua_pushstring(L, buf);
}

/* the range a number option takes, for messages: "finite number", "number > 0",
 * "number in [0, 1]" */
static const char *range_text(lua_State *L, double lo, double hi, unsigned flags)
{
    int hasl = lo > -INFINITY, hash = hi < INFINITY;
    if (!hasl && !hash)
        return "finite number";
    if (!hash)
        return lua_pushfstring(L, "number %s %s", (flags & QDL_OPEN_LO) ? ">" : ">=", numtext(L, lo));
    if (!hasl)
        return lua_pushfstring(L, "number %s %s", (flags & QDL_OPEN_HI) ? "<" : "<=", numtext(L, hi));
    return lua_pushfstring(L, "number in %c%s, %s%c", (flags & QDL_OPEN_LO) ? '(' : '[', numtext(L, lo),
                           numtext(L, hi), (flags & QDL_OPEN_HI) ? ')' : ']');
}

double qdL_optnum(lua_State *L, int arg, const char *key, double def, double lo, double hi,
                  unsigned flags)
{
    if (!lua_istable(L, arg)) {
        if (flags & QDL_REQUIRED)
            luaL_argerror(L, arg, lua_pushfstring(L, "option '%s' (%s) expected", key,
                                                  range_text(L, lo, hi, flags)));
        return def;
    }
    int t = lua_getfield(L, arg, key);
    double v = def;
    if (t == LUA_TNIL) {
        if (flags & QDL_REQUIRED)
            luaL_argerror(L, arg, lua_pushfstring(L, "option '%s' (%s) expected, got no value", key,
                                                  range_text(L, lo, hi, flags)));
    } else if (t != LUA_TNUMBER) {
        luaL_argerror(L, arg, lua_pushfstring(L, "option '%s': number expected, got %s", key,
                                              luaL_typename(L, -1)));
    } else {
        v = lua_tonumber(L, -1);
        int ok = isfinite(v) && ((flags & QDL_OPEN_LO) ? v > lo : v >= lo) &&
                 ((flags & QDL_OPEN_HI) ? v < hi : v <= hi);
        if (!ok)
            luaL_argerror(L, arg, lua_pushfstring(L, "option '%s': %s expected, got %s", key,
                                                  range_text(L, lo, hi, flags), numtext(L, v)));
    }
    lua_pop(L, 1);
    return v;
}

qd_rng *qdL_rng_opts(lua_State *L, int idx, int *optidx)
{
    if (luaL_testudata(L, idx, QDL_RNG)) {
        *optidx = idx + 1;
        return qdL_checkrng(L, idx);
    }
    if (lua_isnoneornil(L, idx)) {
        *optidx = idx + 1;
        return qdL_runrng(L);
    }
    if (lua_istable(L, idx)) {
        *optidx = idx;
        qdL_checknargs(L, idx);
        return qdL_runrng(L);
    }
    *optidx = idx + 1;
    return qdL_checkrng(L, idx);   /* raises: neither an rng nor options */
}

qd_c *qdL_checkunitary(lua_State *L, int arg, int k)
{
    qd_c *m;
    size_t d = qdL_checkcmatrix(L, arg, &m);
    if (d != ((size_t)1 << k))
        luaL_argerror(L, arg, lua_pushfstring(L, "%dx%d matrix for %d qubit%s expected, got %dx%d",
                                              1 << k, 1 << k, k, k > 1 ? "s" : "", (int)d, (int)d));
    double dev = 0;
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++) {
            qd_c s = 0;
            for (size_t l = 0; l < d; l++)
                s += conj(m[l + i * d]) * m[l + j * d];
            double x = cabs(s - (i == j ? 1.0 : 0.0));
            if (!(x <= dev))
                dev = isnan(x) ? INFINITY : x;
        }
    if (!(dev <= 1e-8))
        luaL_argerror(L, arg, lua_pushfstring(L, "unitary matrix expected (max |U^dagger U - I| = %f)", dev));
    return m;
}

void qdL_newclass(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction index_fn,
                  const luaL_Reg *meta)
{
    luaL_newmetatable(L, name);                 /* mt */
    lua_newtable(L);                            /* mt, methods */
    luaL_setfuncs(L, methods, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "methods");
    lua_pushvalue(L, -1);
    if (index_fn)
        lua_pushcclosure(L, index_fn, 1);
    lua_setfield(L, -3, "__index");
    if (meta) {
        lua_pushvalue(L, -2);
        luaL_setfuncs(L, meta, 0);
        lua_pop(L, 1);
    }
    lua_remove(L, -2);                          /* methods */
}

/* ---- printing matrices (numpy style) */

static qd_c get_colmajor(const void *ctx, size_t r, size_t c, size_t rows)
{
    return ((const qd_c *)ctx)[r + c * rows];
}

/* which indices of 0..n-1 to show: all up to 10, else the first 4 and the last 4 (a -1
 * marks the gap); returns the count */
static size_t shown_idx(size_t n, long *idx)
{
    size_t k = 0;
    if (n <= 10) {
        for (size_t i = 0; i < n; i++)
            idx[k++] = (long)i;
        return k;
    }
    for (size_t i = 0; i < 4; i++)
        idx[k++] = (long)i;
    idx[k++] = -1;
    for (size_t i = n - 4; i < n; i++)
        idx[k++] = (long)i;
    return k;
}

void qdL_add_matrix_get(luaL_Buffer *b, size_t rows, size_t cols, int cplx,
                        qd_c (*get)(const void *, size_t, size_t, size_t), const void *ctx)
{
    long ri[10], ci[10];
    size_t nr = shown_idx(rows, ri), nc = shown_idx(cols, ci);
    char cell[10][10][48];
    int width[10] = {0};
    double mx = 0;
    for (size_t i = 0; i < nr; i++)
        for (size_t j = 0; j < nc; j++)
            if (ri[i] >= 0 && ci[j] >= 0) {
                double m = cabs(get(ctx, (size_t)ri[i], (size_t)ci[j], rows));
                mx = m > mx || isnan(m) ? m : mx;
            }
    /* parts below 1e-12 of the largest entry shown print as 0 (rounding noise) */
    double tiny = 1e-12 * (isfinite(mx) ? mx : 0);
    for (size_t i = 0; i < nr; i++)
        for (size_t j = 0; j < nc; j++) {
            char *t = cell[i][j];
            if (ri[i] < 0 || ci[j] < 0) {
                snprintf(t, 48, "%s", ri[i] < 0 && ci[j] < 0 ? "" : (ri[i] < 0 ? "..." : "..."));
            } else {
                qd_c z = get(ctx, (size_t)ri[i], (size_t)ci[j], rows);
                double re = fabs(creal(z)) <= tiny ? 0.0 : creal(z);
                double im = fabs(cimag(z)) <= tiny ? 0.0 : cimag(z);
                if (cplx)
                    snprintf(t, 48, "%.4g%+.4gi", re, im);
                else
                    snprintf(t, 48, "%.4g", re);
            }
            int w = (int)strlen(t);
            if (w > width[j])
                width[j] = w;
        }
    for (size_t i = 0; i < nr; i++) {
        luaL_addstring(b, "\n  ");
        for (size_t j = 0; j < nc; j++) {
            char buf[64];
            snprintf(buf, sizeof buf, "%s%*s", j ? "  " : "", width[j], cell[i][j]);
            luaL_addstring(b, buf);
        }
    }
}

void qdL_add_matrix(luaL_Buffer *b, const qd_c *m, size_t rows, size_t cols, int cplx)
{
    qdL_add_matrix_get(b, rows, cols, cplx, get_colmajor, m);
}
