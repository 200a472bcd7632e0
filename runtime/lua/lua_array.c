/* lua_array.c — qd.Vector and qd.Matrix: dense real or complex results (probabilities,
 * overlap matrices, per-member angles). Column-major like everything else; entries are
 * indexed 1..N from Lua (collections are 1-based). Complex entries read as re, im. */
#include "lua_util.h"
#include <math.h>
#include <string.h>
#include <stdio.h>


static qdl_array *newarray(lua_State *L, size_t rows, size_t cols, int cplx, int is_vector, int zero);

qdl_array *qdL_newarray(lua_State *L, size_t rows, size_t cols, int cplx, int is_vector)
{
    return newarray(L, rows, cols, cplx, is_vector, 1);
}

qdl_array *qdL_newarray_nz(lua_State *L, size_t rows, size_t cols, int cplx, int is_vector)
{
    return newarray(L, rows, cols, cplx, is_vector, 0);
}

static qdl_array *newarray(lua_State *L, size_t rows, size_t cols, int cplx, int is_vector, int zero)
{
    size_t n, bytes;
    if (qd_mul_overflow(rows, cols, &n) || qd_mul_overflow(n, cplx ? sizeof(qd_c) : sizeof(double), &bytes)) {
        char msg[96];   /* lua_pushfstring has no %zu */
        snprintf(msg, sizeof msg, "not enough memory for a %zux%zu array (size overflows)", rows, cols);
        luaL_error(L, "%s", msg);
    }
    qdl_array *a = lua_newuserdatauv(L, sizeof *a, 0);
    a->rows = rows;
    a->cols = cols;
    a->cplx = cplx;
    a->data = NULL;
    a->bytes = 0;
    a->freed = 0;
    luaL_setmetatable(L, is_vector ? QDL_VECTOR : QDL_MATRIX);
    if (bytes) {
        a->data = qdL_alloc_try(L, bytes, zero);
        if (!a->data) {   /* the description is formatted only here: arrays are made per step */
            char what[64];
            snprintf(what, sizeof what, "a %zux%zu %s array", rows, cols, cplx ? "complex" : "real");
            qdL_nomem(L, bytes, what);
        }
        a->bytes = bytes;
    }
    return a;
}

qdl_array *qdL_testarray(lua_State *L, int idx)
{
    qdl_array *a = luaL_testudata(L, idx, QDL_VECTOR);
    if (!a)
        a = luaL_testudata(L, idx, QDL_MATRIX);
    if (a && a->freed)
        luaL_argerror(L, idx, lua_pushfstring(L, "%s has been freed",
                                              luaL_testudata(L, idx, QDL_VECTOR) ? QDL_VECTOR : QDL_MATRIX));
    return a;
}

qdl_array *qdL_checkarray(lua_State *L, int idx)
{
    qdl_array *a = qdL_testarray(L, idx);
    if (!a) {
        const char *got = luaL_getmetafield(L, idx, "__name") == LUA_TSTRING ? lua_tostring(L, -1)
                                                                            : luaL_typename(L, idx);
        luaL_argerror(L, idx, lua_pushfstring(L, "qd.Vector or qd.Matrix expected, got %s", got));
    }
    return a;
}

qd_c qdL_array_get(const qdl_array *a, size_t i)
{
    return a->cplx ? ((const qd_c *)a->data)[i] : ((const double *)a->data)[i];
}

static void array_set(qdl_array *a, size_t i, qd_c z)
{
    if (a->cplx)
        ((qd_c *)a->data)[i] = z;
    else
        ((double *)a->data)[i] = creal(z);
}

static int is_vector(lua_State *L, int idx)
{
    return luaL_testudata(L, idx, QDL_VECTOR) != NULL;
}

/* 1-based (i) for vectors, (i, j) for matrices -> 0-based linear index */
static size_t checkindex(lua_State *L, qdl_array *a, int arg, int vec)
{
    lua_Integer i = luaL_checkinteger(L, arg);
    if (vec || a->cols == 1) {
        size_t len = a->rows * a->cols;
        if (i < 1 || (size_t)i > len)
            luaL_argerror(L, arg, lua_pushfstring(L, "index 1..%I expected, got %I", (LUAI_UACINT)len, (LUAI_UACINT)i));
        if (!vec && !lua_isnoneornil(L, arg + 1)) {
            lua_Integer j = luaL_checkinteger(L, arg + 1);
            if (j != 1)
                luaL_argerror(L, arg + 1, lua_pushfstring(L, "column 1..1 expected, got %I", (LUAI_UACINT)j));
        }
        return (size_t)(i - 1);
    }
    lua_Integer j = luaL_checkinteger(L, arg + 1);
    if (i < 1 || (size_t)i > a->rows)
        luaL_argerror(L, arg, lua_pushfstring(L, "row 1..%I expected, got %I", (LUAI_UACINT)a->rows, (LUAI_UACINT)i));
    if (j < 1 || (size_t)j > a->cols)
        luaL_argerror(L, arg + 1, lua_pushfstring(L, "column 1..%I expected, got %I", (LUAI_UACINT)a->cols, (LUAI_UACINT)j));
    return (size_t)(i - 1) + (size_t)(j - 1) * a->rows;
}

static void pushentry(lua_State *L, qdl_array *a, size_t i, int pairs)
{
    qd_c z = qdL_array_get(a, i);
    if (!a->cplx) {
        lua_pushnumber(L, creal(z));
    } else if (pairs) {
        lua_createtable(L, 2, 0);
        lua_pushnumber(L, creal(z));
        lua_rawseti(L, -2, 1);
        lua_pushnumber(L, cimag(z));
        lua_rawseti(L, -2, 2);
    } else {
        qdL_pushcomplex(L, z);
    }
}

/* Entries of a table are read exactly once (a table whose __index or __len answers
 * differently on a second read cannot make us trust a stale check): into a complex scratch
 * array first, then copied to a real array if no entry had an imaginary part given. */
static qdl_array *demote(lua_State *L, qdl_array *tmp, int cplx, int is_vec)
{
    if (cplx)
        return tmp;
    qdl_array *a = qdL_newarray(L, tmp->rows, tmp->cols, 0, is_vec);
    size_t n = tmp->rows * tmp->cols;
    for (size_t i = 0; i < n; i++)
        ((double *)a->data)[i] = creal(((qd_c *)tmp->data)[i]);
    lua_remove(L, -2);   /* the scratch array (collected) */
    return a;
}

/* qd.vector(n [, {complex=}]) | qd.vector{x1, x2, ...} (entries numbers or {re, im}) */
static int l_vector(lua_State *L)
{
    qdL_checknargs(L, 2);
    if (lua_istable(L, 1)) {
        qdL_checknargs(L, 1);
        lua_Integer n = qdL_checklen(L, 1, 1, (lua_Integer)1 << 40, "table of entries");
        int cplx = 0;
        qdl_array *a = qdL_newarray(L, (size_t)n, 1, 1, 1);   /* scratch, complex */
        for (lua_Integer i = 1; i <= n; i++) {
            int t = lua_geti(L, 1, i);
            qd_c z;
            if ((t != LUA_TNUMBER && t != LUA_TTABLE) || !qdL_tocomplex(L, -1, &z))
                luaL_argerror(L, 1, lua_pushfstring(L, "number or {re, im} expected at position %d, got %s",
                                                    (int)i, luaL_typename(L, -1)));
            cplx |= t == LUA_TTABLE;
            lua_pop(L, 1);
            ((qd_c *)a->data)[i - 1] = z;
        }
        demote(L, a, cplx, 1);
        return 1;
    }
    size_t n = qdL_checkcount(L, 1, "length");
    static const char *const opts[] = {"complex", NULL};
    qdL_checkoptions(L, 2, opts);
    qdL_newarray(L, n, 1, qdL_optbool(L, 2, "complex", 0), 1);
    return 1;
}

/* qd.matrix{v1, v2, ...} when every row is a live real qd.Vector of one length: the real
 * matrix built directly (the common per-step case: feedback coefficients from Vector
 * arithmetic); 0, nothing pushed, for anything else (the general path checks and says why) */
static int matrix_of_real_vectors(lua_State *L, lua_Integer rows)
{
    size_t cols = 0;
    if (rows < 1)
        return 0;
    if (lua_getmetatable(L, 1)) {   /* rows through metamethods: the general path */
        lua_pop(L, 1);
        return 0;
    }
    for (lua_Integer r = 1; r <= rows; r++) {
        lua_rawgeti(L, 1, r);
        qdl_array *rv = luaL_testudata(L, -1, QDL_VECTOR);
        size_t c = rv ? rv->rows * rv->cols : 0;
        lua_pop(L, 1);
        if (!rv || rv->freed || rv->cplx || c < 1 || (r > 1 && c != cols))
            return 0;
        cols = c;
    }
    qdl_array *a = qdL_newarray_nz(L, (size_t)rows, cols, 0, 0);
    double *out = a->data;
    for (lua_Integer r = 1; r <= rows; r++) {
        lua_rawgeti(L, 1, r);
        qdl_array *rv = luaL_testudata(L, -1, QDL_VECTOR);   /* again: a finaliser run by the
                                                                allocation could have changed it */
        if (!rv || rv->freed || rv->cplx || rv->rows * rv->cols != cols)
            luaL_argerror(L, 1, lua_pushfstring(L, "row %d changed while the matrix was built", (int)r));
        const double *v = rv->data;
        for (size_t j = 0; j < cols; j++)
            out[(size_t)(r - 1) + j * (size_t)rows] = v[j];
        lua_pop(L, 1);
    }
    return 1;
}

/* qd.matrix(rows, cols [, {complex=}]) | qd.matrix{{row1...}, {row2...}} (a row may be a qd.Vector) */
static int l_matrix(lua_State *L)
{
    qdL_checknargs(L, 3);
    if (lua_istable(L, 1)) {
        qdL_checknargs(L, 1);
        lua_Integer rows = qdL_checklen(L, 1, 1, (lua_Integer)1 << 40, "table of rows"), cols = -1;
        if (matrix_of_real_vectors(L, rows))
            return 1;
        int cplx = 0;
        if (rows < 1)
            luaL_argerror(L, 1, "non-empty table of rows expected");
        qdl_array *a = NULL;
        int ai = 0;
        for (lua_Integer r = 1; r <= rows; r++) {
            /* a row is a table of numbers or a qd.Vector (qd.matrix{x, y}: vectors as rows) */
            int rt = lua_geti(L, 1, r);
            qdl_array *rv = rt == LUA_TUSERDATA ? luaL_testudata(L, -1, QDL_VECTOR) : NULL;
            if (rv && rv->freed)
                luaL_argerror(L, 1, lua_pushfstring(L, "row %d: the qd.Vector has been freed", (int)r));
            if (rt != LUA_TTABLE && !rv)
                luaL_argerror(L, 1, lua_pushfstring(L, "row %d: table or qd.Vector expected", (int)r));
            lua_Integer c = rv ? (lua_Integer)(rv->rows * rv->cols) : luaL_len(L, -1);
            if (cols < 0) {
                cols = c;
                if (c < 1 || c > ((lua_Integer)1 << 40))
                    luaL_argerror(L, 1, lua_pushfstring(L, "row 1: 1..2^40 entries expected, got %I", (LUAI_UACINT)c));
                a = qdL_newarray(L, (size_t)rows, (size_t)cols, 1, 0);   /* scratch, complex */
                lua_insert(L, -2);   /* below row 1 */
                ai = lua_gettop(L) - 1;
            }
            if (c != cols)
                luaL_argerror(L, 1, lua_pushfstring(L, "rows of equal length expected (row %d has %d entries, row 1 has %d)",
                                                    (int)r, (int)c, (int)cols));
            for (lua_Integer j = 1; j <= cols; j++) {
                qd_c z;
                if (rv) {
                    z = qdL_array_get(rv, (size_t)(j - 1));
                    cplx |= rv->cplx;
                } else {
                    int t = lua_geti(L, -1, j);
                    if ((t != LUA_TNUMBER && t != LUA_TTABLE) || !qdL_tocomplex(L, -1, &z))
                        luaL_argerror(L, 1, lua_pushfstring(L, "number or {re, im} expected at [%d][%d]", (int)r, (int)j));
                    cplx |= t == LUA_TTABLE;
                    lua_pop(L, 1);
                }
                ((qd_c *)a->data)[(size_t)(r - 1) + (size_t)(j - 1) * (size_t)rows] = z;
            }
            lua_pop(L, 1);
        }
        lua_settop(L, ai);
        demote(L, a, cplx, 0);
        return 1;
    }
    size_t rows = qdL_checkcount(L, 1, "rows"), cols = qdL_checkcount(L, 2, "cols");
    static const char *const opts[] = {"complex", NULL};
    qdL_checkoptions(L, 3, opts);
    qdL_newarray(L, rows, cols, qdL_optbool(L, 3, "complex", 0), 0);
    return 1;
}

/* v:get(i) / M:get(i, j): number, or re, im for complex arrays */
static int m_get(lua_State *L)
{
    qdl_array *a = qdL_checkarray(L, 1);
    int vec = is_vector(L, 1);
    qdL_checknargs(L, vec ? 2 : 3);
    size_t i = checkindex(L, a, 2, vec);
    pushentry(L, a, i, 0);
    return a->cplx ? 2 : 1;
}

/* v:set(i, x) / M:set(i, j, x); x a number or {re, im}; returns self */
static int m_set(lua_State *L)
{
    qdl_array *a = qdL_checkarray(L, 1);
    int vec = is_vector(L, 1);
    int varg = vec ? 3 : 4;
    qdL_checknargs(L, varg);
    size_t i = checkindex(L, a, 2, vec);
    qd_c z;
    if (!qdL_tocomplex(L, varg, &z))
        luaL_argerror(L, varg, "number or {re, im} expected");
    if (!a->cplx && cimag(z) != 0)
        luaL_argerror(L, varg, "real value expected for a real array");
    array_set(a, i, z);
    lua_settop(L, 1);
    return 1;
}

/* v:totable() -> {x1, ...}; M:totable() -> {{row1}, ...}; complex entries as {re, im} */
static int m_totable(lua_State *L)
{
    qdl_array *a = qdL_checkarray(L, 1);
    qdL_checknargs(L, 1);
    if (is_vector(L, 1)) {
        size_t n = a->rows * a->cols;
        lua_createtable(L, (int)(n < 1u << 30 ? n : 0), 0);
        for (size_t i = 0; i < n; i++) {
            pushentry(L, a, i, 1);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        return 1;
    }
    lua_createtable(L, (int)a->rows, 0);
    for (size_t r = 0; r < a->rows; r++) {
        lua_createtable(L, (int)a->cols, 0);
        for (size_t c = 0; c < a->cols; c++) {
            pushentry(L, a, r + c * a->rows, 1);
            lua_rawseti(L, -2, (lua_Integer)c + 1);
        }
        lua_rawseti(L, -2, (lua_Integer)r + 1);
    }
    return 1;
}

static int m_shape(lua_State *L)
{
    qdl_array *a = qdL_checkarray(L, 1);
    qdL_checknargs(L, 1);
    lua_pushinteger(L, (lua_Integer)a->rows);
    lua_pushinteger(L, (lua_Integer)a->cols);
    return 2;
}

static int m_is_complex(lua_State *L)
{
    qdl_array *a = qdL_checkarray(L, 1);
    qdL_checknargs(L, 1);
    lua_pushboolean(L, a->cplx);
    return 1;
}

static int m_sum(lua_State *L)
{
    qdl_array *a = qdL_checkarray(L, 1);
    qdL_checknargs(L, 1);
    size_t n = a->rows * a->cols;
    qd_c s = 0;
    for (size_t i = 0; i < n; i++)
        s += qdL_array_get(a, i);
    if (a->cplx) {
        qdL_pushcomplex(L, s);
        return 2;
    }
    lua_pushnumber(L, creal(s));
    return 1;
}

static int m_mean(lua_State *L)
{
    qdl_array *a = qdL_checkarray(L, 1);
    qdL_checknargs(L, 1);
    size_t n = a->rows * a->cols;
    qd_c s = 0;
    for (size_t i = 0; i < n; i++)
        s += qdL_array_get(a, i);
    s /= (double)(n ? n : 1);
    if (a->cplx) {
        qdL_pushcomplex(L, s);
        return 2;
    }
    lua_pushnumber(L, creal(s));
    return 1;
}

static int m_copy(lua_State *L)
{
    qdl_array *a = qdL_checkarray(L, 1);
    qdL_checknargs(L, 1);
    qdl_array *b = qdL_newarray(L, a->rows, a->cols, a->cplx, is_vector(L, 1));
    if (a->bytes)
        memcpy(b->data, a->data, a->bytes);
    return 1;
}

/* a:abs() / a:angle() -> the real array of |a_i| / arg a_i (atan2(im, re); real entries:
 * 0 or pi), the same shape and kind */
static int polar_part(lua_State *L, int want_angle)
{
    qdl_array *a = qdL_checkarray(L, 1);
    qdL_checknargs(L, 1);
    qdl_array *b = qdL_newarray(L, a->rows, a->cols, 0, is_vector(L, 1));
    size_t n = a->rows * a->cols;
    double *out = b->data;
    if (a->cplx) {
        const qd_c *x = a->data;
        for (size_t i = 0; i < n; i++)
            out[i] = want_angle ? carg(x[i]) : cabs(x[i]);
    } else {
        const double *x = a->data;
        for (size_t i = 0; i < n; i++)
            out[i] = want_angle ? atan2(0.0, x[i]) : fabs(x[i]);
    }
    return 1;
}
static int m_abs(lua_State *L) { return polar_part(L, 0); }
static int m_angle(lua_State *L) { return polar_part(L, 1); }

/* self of a metamethod or of :free(): a Vector or Matrix, freed or not (called by hand
 * with any other value, a metamethod raises instead of reading it) */
static qdl_array *array_self(lua_State *L)
{
    qdl_array *a = luaL_testudata(L, 1, QDL_VECTOR);
    if (!a)
        a = luaL_testudata(L, 1, QDL_MATRIX);
    if (!a) {
        const char *got = luaL_getmetafield(L, 1, "__name") == LUA_TSTRING ? lua_tostring(L, -1)
                                                                          : luaL_typename(L, 1);
        luaL_argerror(L, 1, lua_pushfstring(L, "qd.Vector or qd.Matrix expected, got %s", got));
    }
    return a;
}

/* __gc and __close (which passes the error object as a second argument) */
static int array_gc(lua_State *L)
{
    qdl_array *a = array_self(L);
    if (!a->freed) {
        qdL_release(a->data, a->bytes);
        a->data = NULL;
        a->bytes = 0;
        a->freed = 1;
    }
    return 0;
}

/* v:free(): idempotent */
static int m_free(lua_State *L)
{
    qdL_checknargs(L, 1);
    return array_gc(L);
}

static int m_len(lua_State *L)
{
    qdl_array *a = qdL_checkarray(L, 1);
    lua_pushinteger(L, (lua_Integer)(is_vector(L, 1) ? a->rows * a->cols : a->rows));
    return 1;
}

/* v[i] for vectors (number, or {re, im}); methods otherwise */
static int m_index(lua_State *L)
{
    array_self(L);
    if (lua_type(L, 2) == LUA_TNUMBER && is_vector(L, 1)) {
        qdl_array *a = qdL_checkarray(L, 1);
        int isint = 0;
        lua_Integer i = lua_tointegerx(L, 2, &isint);   /* v[2.0] is v[2], as for tables */
        if (!isint || i < 1 || (size_t)i > a->rows * a->cols) {
            lua_pushnil(L);
            return 1;
        }
        pushentry(L, a, (size_t)(i - 1), 1);
        return 1;
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
}

static int m_newindex(lua_State *L)
{
    qdl_array *a = qdL_checkarray(L, 1);
    if (!is_vector(L, 1))
        return luaL_error(L, "qd.Matrix entries are set with M:set(i, j, x)");
    int isint = 0;
    lua_Integer i = lua_tointegerx(L, 2, &isint);
    if (!isint)
        return luaL_error(L, "qd.Vector entries are set with v[i] = x (i an integer index)");
    if (i < 1 || (size_t)i > a->rows * a->cols)
        return luaL_error(L, "index 1..%I expected, got %I", (LUAI_UACINT)(a->rows * a->cols), (LUAI_UACINT)i);
    qd_c z;
    if (!qdL_tocomplex(L, 3, &z) || (!a->cplx && cimag(z) != 0))
        return luaL_error(L, "%s value expected", a->cplx ? "number or {re, im}" : "real");
    array_set(a, (size_t)(i - 1), z);
    return 0;
}

static void addnum(luaL_Buffer *b, qd_c z, int cplx)
{
    char buf[64];
    if (cplx)
        snprintf(buf, sizeof buf, "%.6g%+.6gi", creal(z), cimag(z));
    else
        snprintf(buf, sizeof buf, "%.6g", creal(z));
    luaL_addstring(b, buf);
}

static qd_c array_entry(const void *ctx, size_t r, size_t c, size_t rows)
{
    return qdL_array_get(ctx, r + c * rows);
}

static int m_tostring(lua_State *L)
{
    qdl_array *a = array_self(L);
    int vec = is_vector(L, 1);
    if (a->freed) {
        lua_pushfstring(L, "%s (freed)", vec ? QDL_VECTOR : QDL_MATRIX);
        return 1;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    char head[96];
    if (vec)
        snprintf(head, sizeof head, "qd.Vector(%zu, %s): [", a->rows * a->cols, a->cplx ? "complex" : "real");
    else
        snprintf(head, sizeof head, "qd.Matrix(%zux%zu, %s):", a->rows, a->cols, a->cplx ? "complex" : "real");
    luaL_addstring(&b, head);
    if (vec) {
        size_t n = a->rows * a->cols, show = n > 12 ? 10 : n;
        for (size_t i = 0; i < show; i++) {
            if (i)
                luaL_addstring(&b, ", ");
            addnum(&b, qdL_array_get(a, i), a->cplx);
        }
        if (show < n) {
            luaL_addstring(&b, ", ..., ");
            addnum(&b, qdL_array_get(a, n - 1), a->cplx);
        }
        luaL_addstring(&b, "]");
    } else {
        qdL_add_matrix_get(&b, a->rows, a->cols, a->cplx, array_entry, a);
    }
    luaL_pushresult(&b);
    return 1;
}

void qdL_open_array(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"get", m_get}, {"set", m_set}, {"totable", m_totable}, {"shape", m_shape},
        {"is_complex", m_is_complex}, {"sum", m_sum}, {"mean", m_mean}, {"copy", m_copy},
        {"abs", m_abs}, {"angle", m_angle}, {"free", m_free}, {NULL, NULL}};
    const char *names[] = {QDL_VECTOR, QDL_MATRIX};
    for (int k = 0; k < 2; k++) {
        static const luaL_Reg meta[] = {
            {"__newindex", m_newindex}, {"__gc", array_gc}, {"__close", array_gc},
            {"__len", m_len}, {"__tostring", m_tostring}, {NULL, NULL}};
        qdL_newclass(L, names[k], methods, m_index, meta);
        lua_pop(L, 1);
    }
    static const luaL_Reg fns[] = {{"vector", l_vector}, {"matrix", l_matrix}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
