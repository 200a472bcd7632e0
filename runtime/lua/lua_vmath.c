/* lua_vmath.c — elementwise maths on real qd.Vector / qd.Matrix values, so that a per-member
 * formula in a script (a feedback law of qd.sse, a score, a reweighting) is a few C calls
 * instead of a Lua loop over the members:
 *   v:exp() v:log() v:sqrt() v:tanh() v:atanh() v:sin() v:cos() v:sigmoid()  -> new array
 *   v:clamp(lo, hi)    v:mul(w)  v:div(w)   (w: an array of the same shape, or a number)
 * Results keep the shape and type (Vector or Matrix). A value outside a function's domain
 * (log of a non-positive entry, atanh outside (-1, 1), ...) raises an error naming the
 * entry rather than giving NaN or infinity. */
#include "lua_util.h"
#include <math.h>
#include <string.h>

/* a live, real Vector or Matrix at idx (what names the method in messages) */
static qdl_array *checkreal(lua_State *L, int idx, const char *what)
{
    qdl_array *a = qdL_checkarray(L, idx);
    if (a->cplx)
        luaL_argerror(L, idx, lua_pushfstring(L, "%s: real qd.Vector or qd.Matrix expected, got a complex one", what));
    return a;
}

/* a new array shaped like a (same metatable), entries not zeroed: every caller writes all */
static qdl_array *like(lua_State *L, int idx, const qdl_array *a)
{
    int vec = luaL_testudata(L, idx, QDL_VECTOR) != NULL;
    return qdL_newarray_nz(L, a->rows, a->cols, 0, vec);
}

typedef enum { F_EXP, F_LOG, F_SQRT, F_TANH, F_ATANH, F_SIN, F_COS, F_SIGMOID } vfun;
static const char *const vnames[] = {"exp", "log", "sqrt", "tanh", "atanh", "sin", "cos", "sigmoid"};

/* 0 when x is in the function's domain, else what it should be */
static const char *domain(vfun f, double x)
{
    switch (f) {
    case F_LOG:
        return x > 0 ? NULL : "> 0";
    case F_SQRT:
        return x >= 0 ? NULL : ">= 0";
    case F_ATANH:
        return x > -1 && x < 1 ? NULL : "in (-1, 1)";
    default:
        return NULL;
    }
}

static double apply(vfun f, double x)
{
    switch (f) {
    case F_EXP:
        return exp(x);
    case F_LOG:
        return log(x);
    case F_SQRT:
        return sqrt(x);
    case F_TANH:
        return tanh(x);
    case F_ATANH:
        return atanh(x);
    case F_SIN:
        return sin(x);
    case F_COS:
        return cos(x);
    case F_SIGMOID:
        return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
    }
    return x;
}

static int unary(lua_State *L, vfun f)
{
    qdl_array *a = checkreal(L, 1, vnames[f]);
    qdL_checknargs(L, 1);
    size_t n = a->rows * a->cols;
    const double *x = a->data;
    for (size_t i = 0; i < n; i++) {
        const char *need = isfinite(x[i]) ? domain(f, x[i]) : "finite";
        if (need)
            return luaL_argerror(L, 1, lua_pushfstring(L, "entry %d is %f, %s expected", (int)i + 1, x[i], need));
    }
    qdl_array *o = like(L, 1, a);
    double *y = o->data;
    if (f == F_ATANH)
        qd_vm_atanh(x, y, n);   /* vectorised (runtime/core/vmath.c) */
    else
        for (size_t i = 0; i < n; i++)
            y[i] = apply(f, x[i]);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(y[i]))
            return luaL_argerror(L, 1, lua_pushfstring(L, "entry %d overflows (%f)", (int)i + 1, x[i]));
    return 1;
}

static int m_exp(lua_State *L) { return unary(L, F_EXP); }
static int m_log(lua_State *L) { return unary(L, F_LOG); }
static int m_sqrt(lua_State *L) { return unary(L, F_SQRT); }
static int m_tanh(lua_State *L) { return unary(L, F_TANH); }
static int m_atanh(lua_State *L) { return unary(L, F_ATANH); }
static int m_sin(lua_State *L) { return unary(L, F_SIN); }
static int m_cos(lua_State *L) { return unary(L, F_COS); }
static int m_sigmoid(lua_State *L) { return unary(L, F_SIGMOID); }

/* v:clamp(lo, hi) */
static int m_clamp(lua_State *L)
{
    qdl_array *a = checkreal(L, 1, "clamp");
    qdL_checknargs(L, 3);
    double lo = luaL_checknumber(L, 2), hi = luaL_checknumber(L, 3);
    if (isnan(lo))
        return luaL_argerror(L, 2, "number expected, got nan");
    if (!(hi >= lo))
        return luaL_argerror(L, 3, "upper bound >= lower bound expected");
    qdl_array *o = like(L, 1, a);
    const double *x = a->data;
    double *y = o->data;
    for (size_t i = 0; i < a->rows * a->cols; i++) {
        if (isnan(x[i]))
            return luaL_argerror(L, 1, lua_pushfstring(L, "entry %d is nan", (int)i + 1));
        y[i] = x[i] < lo ? lo : x[i] > hi ? hi : x[i];
    }
    return 1;
}

/* v:mul(w) / v:div(w): elementwise, w an array of the same shape or a number */
static int binary(lua_State *L, int div)
{
    const char *what = div ? "div" : "mul";
    qdl_array *a = checkreal(L, 1, what);
    qdL_checknargs(L, 2);
    size_t n = a->rows * a->cols;
    const double *x = a->data, *w = NULL;
    double s = 0;
    if (lua_type(L, 2) == LUA_TNUMBER) {
        s = lua_tonumber(L, 2);
        if (!isfinite(s) || (div && s == 0))
            return luaL_argerror(L, 2, div ? "finite non-zero number expected" : "finite number expected");
    } else {
        qdl_array *b = checkreal(L, 2, what);
        if (b->rows != a->rows || b->cols != a->cols)
            return luaL_argerror(L, 2, lua_pushfstring(L, "%dx%d array expected (the shape of the receiver), got %dx%d",
                                                       (int)a->rows, (int)a->cols, (int)b->rows, (int)b->cols));
        w = b->data;
        if (div)
            for (size_t i = 0; i < n; i++)
                if (w[i] == 0)
                    return luaL_argerror(L, 2, lua_pushfstring(L, "entry %d is 0 (division by zero)", (int)i + 1));
    }
    qdl_array *o = like(L, 1, a);
    double *y = o->data;
    for (size_t i = 0; i < n; i++) {
        double v = w ? w[i] : s;
        y[i] = div ? x[i] / v : x[i] * v;
    }
    for (size_t i = 0; i < n; i++)
        if (!isfinite(y[i]))
            return luaL_argerror(L, 1, lua_pushfstring(L, "entry %d: the result is not finite (%f and %f)", (int)i + 1,
                                                       x[i], w ? w[i] : s));
    return 1;
}

static int m_mul(lua_State *L) { return binary(L, 0); }
static int m_div(lua_State *L) { return binary(L, 1); }

void qdL_open_vmath(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"exp", m_exp},   {"log", m_log}, {"sqrt", m_sqrt}, {"tanh", m_tanh}, {"atanh", m_atanh},
        {"sin", m_sin},   {"cos", m_cos}, {"sigmoid", m_sigmoid}, {"clamp", m_clamp},
        {"mul", m_mul},   {"div", m_div}, {NULL, NULL}};
    const char *names[] = {QDL_VECTOR, QDL_MATRIX};
    for (int k = 0; k < 2; k++) {
        luaL_getmetatable(L, names[k]);
        lua_getfield(L, -1, "methods");
        luaL_setfuncs(L, methods, 0);
        lua_pop(L, 2);
    }
}
