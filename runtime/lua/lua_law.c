/* lua_law.c — feedback laws of qd.sse written as Lua functions and traced once.
 *
 *   qd.sse(E, {..., feedback = {terms = {"X", "Y"}, law = function(t, s)
 *       local z = s:expect("Z"):clamp(-0.999, 0.999)
 *       local k = (z:atanh() - u0) * (-1 / (4 * t)) - z
 *       return { 2 * k * s:expect("Y"), -2 * k * s:expect("X") }
 *   end}})
 *
 * The law is called once, before the run, with symbolic values: t (the time of a step) and
 * s, whose s:expect(O) stands for a member's own <O>. Arithmetic (+ - * / unary -, ^2) and
 * the methods of qd.Vector's elementwise maths (exp log sqrt tanh atanh sin cos sigmoid abs
 * clamp mul div min max) on them record a formula (qd_sse_law, qd_dynamics.h), which the SSE
 * evaluates for every member at the start of every step, inside its own loops: no Lua call
 * per step. Values are symbolic, so a law cannot branch on them: comparisons raise an
 * error that says so (:min, :max and :clamp cover the usual cases). */
#include "lua_util.h"
#include <math.h>
#include <string.h>

#define QDL_LAWV "qd.LawValue"
#define QDL_LAWS "qd.LawState"

typedef struct {
    size_t n, cap;
    qd_law_node *nodes;
    size_t nexp, ecap;
    qd_pauli_sum *exps;   /* deep copies */
    int nq, open;         /* qubits; 1 while the law is being traced */
} lawb;

typedef struct {
    lawb *b;
    uint32_t node;
} lawv;

/* *p (count entries of size bytes) grown to cap entries; raises when memory is short */
static void grow(lua_State *L, void **p, size_t count, size_t cap, size_t size)
{
    void *q = qd_malloc(cap * size);
    if (!q)
        luaL_error(L, "not enough memory for a feedback law");
    if (count)
        memcpy(q, *p, count * size);
    qd_free(*p);
    *p = q;
}

static int b_gc(lua_State *L)
{
    lawb *b = lua_touserdata(L, 1);
    for (size_t i = 0; i < b->nexp; i++)
        qd_ps_free(&b->exps[i]);
    qd_free(b->exps);
    qd_free(b->nodes);
    b->exps = NULL;
    b->nodes = NULL;
    b->n = b->nexp = 0;
    return 0;
}

static void push_value(lua_State *L, int bidx, lawb *b, uint32_t node)
{
    lawv *v = lua_newuserdatauv(L, sizeof(lawv), 1);
    v->b = b;
    v->node = node;
    lua_pushvalue(L, bidx);
    lua_setiuservalue(L, -2, 1);
    luaL_setmetatable(L, QDL_LAWV);
}

/* a new node of builder b (the userdata at bidx); pushes its value */
static uint32_t add_node(lua_State *L, int bidx, lawb *b, int op, uint32_t a, uint32_t c2, double c)
{
    if (b->n >= ((size_t)1 << 24))
        luaL_error(L, "feedback law: more than 16777216 operations");
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 64;
        grow(L, (void **)&b->nodes, b->n, cap, sizeof(qd_law_node));
        b->cap = cap;
    }
    b->nodes[b->n] = (qd_law_node){op, a, c2, c};
    push_value(L, bidx, b, (uint32_t)b->n);
    return (uint32_t)b->n++;
}

/* the operand at idx as a node of builder b (its userdata at bidx): a symbolic value of the
 * same, live law, or a finite number (a new constant node) */
static uint32_t operand(lua_State *L, int idx, lawb *b, int bidx, const char *what)
{
    lawv *v = luaL_testudata(L, idx, QDL_LAWV);
    if (v) {
        if (v->b != b)
            luaL_error(L, "feedback law: %s mixes values of two different laws", what);
        return v->node;
    }
    if (lua_type(L, idx) != LUA_TNUMBER)
        luaL_error(L, "feedback law: %s: number or symbolic value expected, got %s", what, luaL_typename(L, idx));
    double c = lua_tonumber(L, idx);
    if (!isfinite(c))
        luaL_error(L, "feedback law: %s: finite number expected, got %f", what, c);
    uint32_t k = add_node(L, bidx, b, QD_LAW_CONST, 0, 0, c);
    lua_pop(L, 1);
    return k;
}

/* a op b for the metamethods and methods: at least one operand is symbolic */
static int binop(lua_State *L, int op, const char *what)
{
    lua_settop(L, 2);
    lawb *b = NULL;
    int bidx = 0;
    /* find the builder first, so that a number operand on either side can become a node */
    for (int i = 1; i <= 2 && !b; i++) {
        lawv *v = luaL_testudata(L, i, QDL_LAWV);
        if (v) {
            if (!v->b->open)
                luaL_error(L, "feedback law: a symbolic value used after its law was traced (%s)", what);
            b = v->b;
            lua_getiuservalue(L, i, 1);
            bidx = lua_gettop(L);
        }
    }
    if (!b)
        return luaL_error(L, "feedback law: %s: symbolic value expected", what);
    uint32_t x = operand(L, 1, b, bidx, what), y = operand(L, 2, b, bidx, what);
    add_node(L, bidx, b, op, x, y, 0);
    return 1;
}

static int v_add(lua_State *L) { return binop(L, QD_LAW_ADD, "+"); }
static int v_sub(lua_State *L) { return binop(L, QD_LAW_SUB, "-"); }
static int v_mul(lua_State *L) { return binop(L, QD_LAW_MUL, "*"); }
static int v_div(lua_State *L) { return binop(L, QD_LAW_DIV, "/"); }
static int m_mul(lua_State *L) { qdL_checknargs(L, 2); return binop(L, QD_LAW_MUL, "mul"); }
static int m_div(lua_State *L) { qdL_checknargs(L, 2); return binop(L, QD_LAW_DIV, "div"); }
static int m_min(lua_State *L) { qdL_checknargs(L, 2); return binop(L, QD_LAW_MIN, "min"); }
static int m_max(lua_State *L) { qdL_checknargs(L, 2); return binop(L, QD_LAW_MAX, "max"); }

static lawv *checkvalue(lua_State *L, int idx, const char *what)
{
    lawv *v = luaL_testudata(L, idx, QDL_LAWV);
    if (!v)
        luaL_error(L, "feedback law: %s: symbolic value expected, got %s", what, luaL_typename(L, idx));
    if (!v->b->open)
        luaL_error(L, "feedback law: a symbolic value used after its law was traced (%s)", what);
    return v;
}

static int unop(lua_State *L, int op, const char *what)
{
    lawv *v = checkvalue(L, 1, what);
    lua_getiuservalue(L, 1, 1);
    add_node(L, lua_gettop(L), v->b, op, v->node, 0, 0);
    return 1;
}

static int v_unm(lua_State *L) { return unop(L, QD_LAW_NEG, "unary -"); }
static int m_abs(lua_State *L) { qdL_checknargs(L, 1); return unop(L, QD_LAW_ABS, "abs"); }
static int m_sqrt(lua_State *L) { qdL_checknargs(L, 1); return unop(L, QD_LAW_SQRT, "sqrt"); }
static int m_exp(lua_State *L) { qdL_checknargs(L, 1); return unop(L, QD_LAW_EXP, "exp"); }
static int m_log(lua_State *L) { qdL_checknargs(L, 1); return unop(L, QD_LAW_LOG, "log"); }
static int m_tanh(lua_State *L) { qdL_checknargs(L, 1); return unop(L, QD_LAW_TANH, "tanh"); }
static int m_atanh(lua_State *L) { qdL_checknargs(L, 1); return unop(L, QD_LAW_ATANH, "atanh"); }
static int m_sin(lua_State *L) { qdL_checknargs(L, 1); return unop(L, QD_LAW_SIN, "sin"); }
static int m_cos(lua_State *L) { qdL_checknargs(L, 1); return unop(L, QD_LAW_COS, "cos"); }
static int m_sigmoid(lua_State *L) { qdL_checknargs(L, 1); return unop(L, QD_LAW_SIGMOID, "sigmoid"); }

/* x ^ 2 (x * x, as the number case rounds); other exponents: exp / log or mul */
static int v_pow(lua_State *L)
{
    checkvalue(L, 1, "^");
    if (lua_type(L, 2) != LUA_TNUMBER || lua_tonumber(L, 2) != 2)
        return luaL_error(L, "feedback law: only x ^ 2 is supported on symbolic values (use x:mul(y), x:sqrt(), "
                             "or (y * x:log()):exp())");
    lua_settop(L, 1);
    lua_pushvalue(L, 1);
    return binop(L, QD_LAW_MUL, "^");
}

/* x:clamp(lo, hi) = min(max(x, lo), hi), as qd.Vector's clamp */
static int m_clamp(lua_State *L)
{
    qdL_checknargs(L, 3);
    lawv *v = checkvalue(L, 1, "clamp");
    double lo = luaL_checknumber(L, 2), hi = luaL_checknumber(L, 3);
    if (isnan(lo) || isnan(hi))
        return luaL_argerror(L, 2, "numbers expected, got nan");
    if (!(hi >= lo))
        return luaL_argerror(L, 3, "upper bound >= lower bound expected");
    lua_getiuservalue(L, 1, 1);
    int bidx = lua_gettop(L);
    uint32_t kl = add_node(L, bidx, v->b, QD_LAW_CONST, 0, 0, lo);
    uint32_t mx = add_node(L, bidx, v->b, QD_LAW_MAX, v->node, kl, 0);
    uint32_t kh = add_node(L, bidx, v->b, QD_LAW_CONST, 0, 0, hi);
    add_node(L, bidx, v->b, QD_LAW_MIN, mx, kh, 0);
    return 1;
}

static int v_compare(lua_State *L)
{
    return luaL_error(L, "feedback law: the law is traced once with symbolic values, so it cannot compare them "
                         "or branch on them (use :min, :max or :clamp)");
}

static int v_tostring(lua_State *L)
{
    lawv *v = luaL_checkudata(L, 1, QDL_LAWV);
    lua_pushfstring(L, "qd.LawValue (symbolic: node %d of a feedback law)", (int)v->node + 1);
    return 1;
}

static int v_index(lua_State *L)
{
    luaL_getmetafield(L, 1, "methods");
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL)
        return 1;
    return luaL_error(L, "feedback law: symbolic values have no method '%s' (known: exp, log, sqrt, tanh, atanh, "
                         "sin, cos, sigmoid, abs, clamp, mul, div, min, max; and + - * / ^2)",
                      lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?");
}

/* s:expect(O): O a Pauli string or qd.PauliSum (Hermitian) on the state's qubits */
static int s_expect(lua_State *L)
{
    qdL_checknargs(L, 2);
    lawb **sb = luaL_checkudata(L, 1, QDL_LAWS);
    lawb *b = *sb;
    if (!b || !b->open)
        return luaL_error(L, "feedback law: the symbolic state is only valid while its law is traced");
    qd_pauli_sum *O = qdL_topauli(L, 2, b->nq, "bad argument #1 to 'expect'");
    if (qd_ps_max_imag(O) > 1e-12)
        return luaL_argerror(L, 2, "Hermitian operator (real coefficients) expected");
    lua_getiuservalue(L, 1, 1);   /* the builder */
    int bidx = lua_gettop(L);
    if (b->nexp >= 4096)
        return luaL_error(L, "feedback law: more than 4096 expectation values");
    if (b->nexp == b->ecap) {
        size_t cap = b->ecap ? 2 * b->ecap : 8;
        grow(L, (void **)&b->exps, b->nexp, cap, sizeof(qd_pauli_sum));
        b->ecap = cap;
    }
    qd_err e;
    if (qd_ps_copy(O, &b->exps[b->nexp], &e) != QD_OK)
        return luaL_error(L, "feedback law: %s", e.msg);
    add_node(L, bidx, b, QD_LAW_EXPECT, 0, 0, (double)b->nexp++);
    return 1;
}

static int s_tostring(lua_State *L)
{
    lua_pushstring(L, "qd.LawState (symbolic: a member's state while its feedback law is traced)");
    return 1;
}

/* the output at stack index idx as a node (a number becomes a constant) */
static uint32_t output(lua_State *L, int idx, int bidx, lawb *b, size_t f)
{
    lawv *v = luaL_testudata(L, idx, QDL_LAWV);
    if (v) {
        if (v->b != b)
            luaL_argerror(L, 2, lua_pushfstring(L, "option 'feedback': law: coefficient %d comes from another law", (int)f + 1));
        return v->node;
    }
    if (lua_type(L, idx) != LUA_TNUMBER || !isfinite(lua_tonumber(L, idx)))
        luaL_argerror(L, 2, lua_pushfstring(L, "option 'feedback': law: coefficient %d: symbolic value or finite number "
                                               "expected, got %s", (int)f + 1,
                                               lua_type(L, idx) == LUA_TNUMBER ? "a non-finite number" : luaL_typename(L, idx)));
    uint32_t k = add_node(L, bidx, b, QD_LAW_CONST, 0, 0, lua_tonumber(L, idx));
    lua_pop(L, 1);
    return k;
}

/* Traces the law function at fidx for nF feedback terms on n qubits into *out. Pushes one
 * value (the storage of *out: keep it on the stack while *out is used). Raises on a bad law. */
void qdL_law_trace(lua_State *L, int fidx, int n, size_t nF, qd_sse_law *out)
{
    fidx = lua_absindex(L, fidx);
    lawb *b = lua_newuserdatauv(L, sizeof(lawb), 0);
    memset(b, 0, sizeof *b);
    b->nq = n;
    b->open = 1;
    luaL_setmetatable(L, "qd.LawBuilder");
    int bidx = lua_gettop(L);
    lua_pushvalue(L, fidx);
    add_node(L, bidx, b, QD_LAW_TIME, 0, 0, 0);   /* t */
    lawb **sb = lua_newuserdatauv(L, sizeof(lawb *), 1);   /* s */
    *sb = b;
    lua_pushvalue(L, bidx);
    lua_setiuservalue(L, -2, 1);
    luaL_setmetatable(L, QDL_LAWS);
    int st = lua_pcall(L, 2, 1, 0);
    b->open = 0;
    if (st != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        luaL_argerror(L, 2, lua_pushfstring(L, "option 'feedback': law: %s", msg ? msg : "(error object is not a string)"));
    }
    int ridx = lua_gettop(L);
    uint32_t *outs = qdL_scratch(L, nF, sizeof(uint32_t), "a feedback law");
    if (nF == 1 && !lua_istable(L, ridx)) {
        outs[0] = output(L, ridx, bidx, b, 0);
    } else {
        if (!lua_istable(L, ridx))
            luaL_argerror(L, 2, lua_pushfstring(L, "option 'feedback': law: a table of %d coefficients expected, got %s",
                                                (int)nF, luaL_typename(L, ridx)));
        lua_Integer len = luaL_len(L, ridx);
        if (len != (lua_Integer)nF)
            luaL_argerror(L, 2, lua_pushfstring(L, "option 'feedback': law: %d coefficients expected (one per term), got %d",
                                                (int)nF, (int)len));
        for (size_t f = 0; f < nF; f++) {
            lua_geti(L, ridx, (lua_Integer)f + 1);
            outs[f] = output(L, -1, bidx, b, f);
            lua_pop(L, 1);
        }
    }
    out->nnodes = b->n;
    out->nodes = b->nodes;
    out->nexp = b->nexp;
    out->exps = b->exps;
    out->out = outs;
    /* keep the builder and the outputs alive together: one table on the stack */
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, bidx);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, ridx + 1);
    lua_rawseti(L, -2, 2);
    lua_replace(L, bidx);
    lua_settop(L, bidx);
}

void qdL_open_law(lua_State *L)
{
    static const luaL_Reg vmeta[] = {{"__add", v_add}, {"__sub", v_sub}, {"__mul", v_mul}, {"__div", v_div},
                                     {"__unm", v_unm}, {"__pow", v_pow}, {"__lt", v_compare}, {"__le", v_compare},
                                     {"__tostring", v_tostring}, {"__index", v_index}, {NULL, NULL}};
    static const luaL_Reg vmethods[] = {{"exp", m_exp},   {"log", m_log},   {"sqrt", m_sqrt}, {"tanh", m_tanh},
                                        {"atanh", m_atanh}, {"sin", m_sin}, {"cos", m_cos},   {"sigmoid", m_sigmoid},
                                        {"abs", m_abs},   {"clamp", m_clamp}, {"mul", m_mul}, {"div", m_div},
                                        {"min", m_min},   {"max", m_max},   {NULL, NULL}};
    luaL_newmetatable(L, QDL_LAWV);
    luaL_setfuncs(L, vmeta, 0);
    lua_newtable(L);
    luaL_setfuncs(L, vmethods, 0);
    lua_setfield(L, -2, "methods");
    lua_pop(L, 1);
    luaL_newmetatable(L, QDL_LAWS);
    lua_newtable(L);
    lua_pushcfunction(L, s_expect);
    lua_setfield(L, -2, "expect");
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, s_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    luaL_newmetatable(L, "qd.LawBuilder");
    lua_pushcfunction(L, b_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
}
