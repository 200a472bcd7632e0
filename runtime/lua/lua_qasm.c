/* lua_qasm.c — the C side of qd.circuit.from_qasm (stdlib/qd/qasm.lua): a scanner that
 * reads the plain statements of an OpenQASM file straight into a qd.Circuit, and the
 * builder state around it (joined measurements, the final register size).
 *
 * Why: a Lua lexer and parser ran at ~20k gates/s; QASMBench- and Qiskit-exported files
 * are hundreds of thousands of lines of `name(angles) reg[i], reg[j];`. The scanner takes
 * exactly those (a gate the Lua side allowed, constant angles, indexed or whole-register
 * operands, `barrier`) and stops, without consuming anything, at the first statement it
 * does not take — a declaration, a user gate, a parameter in an angle, anything odd or
 * wrong. The Lua parser reads that statement (and reports its errors, with their line),
 * then hands the rest back. So every error message stays in one place (qasm.lua), and the
 * scanner needs no error path of its own: "not mine" is its only answer.
 *
 *   local S = core.qasm_builder(text, circ)    -- circ: qd.circuit(qd.max_qubits)
 *   S:allow(qasm_name, qd_gate_name [, u2])     -- u2: the call's 2 angles get pi/2 in front
 *   S:block(qasm_name)                          -- a file's own definition shadows it
 *   S:reg(name, base, size)                     -- a quantum register
 *   pos, line, added = S:scan(pos, line, budget) -- 1-based byte position
 *   S:flush()                                   -- before Lua adds an op itself
 *   mi, pos = S:measure(qubits [, reset])      -- joined with the one before when it can
 *   S:discard(qubits) -> ok; S:pending() -> "measure"|"reset"|nil
 *   S:condition(cond)                          -- the last op runs only if cond holds
 *   S:finish(nq)                                -- the circuit now has nq qubits */
#include "lua_util.h"
#include "qd_circuit.h"
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define QDL_QASM "qd.QasmBuilder"
#define MAX_DEPTH 64           /* parentheses the scanner follows before leaving it to Lua */

/* A gate the file defines whose body is plain qd gates with angles linear in its own
 * (flattened by qasm.lua, which checked the linearity): op o is gate g[o] on the call's
 * qubits q[3o..], angle i = cf[k] + sum_j cf[k+1+j] par[j], k = (3o+i)(np+1). */
#define MACRO_MAXP 16
#define MACRO_MAXQ 16
#define MACRO_MAXOPS 4096
typedef struct {
    int np, nq, nops;
    const qd_gate_info **g;
    int *q;
    double *cf;
} qmacro;

typedef struct {
    char *name;                /* NULL: empty */
    size_t len;
    int base, size;            /* registers */
    const qd_gate_info *g;     /* gates; NULL: blocked (or a macro) */
    int u2;
    qmacro *mac;               /* a file's gate, expanded here */
} qentry;

typedef struct {
    qentry *t;
    size_t cap, used;
} qtable;

typedef struct {
    qtable regs, gates;
    int pend_k, pend_qs[30], pend_discard, pend_reset;   /* a measurement not yet added (joined with the next) */
    int *meas_k;               /* qubits of each measurement/reset op added (conditions need them) */
    size_t nmeas_k, cap_k;
    int done;
} qbuilder;

/* ------------------------------------------------------------------ hash tables */
static size_t hash(const char *s, size_t len)
{
    size_t h = 1469598103934665603u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211u;
    return h;
}

static qentry *tfind(const qtable *t, const char *s, size_t len)
{
    if (!t->cap)
        return NULL;
    for (size_t i = hash(s, len) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        qentry *x = &t->t[i];
        if (!x->name)
            return NULL;
        if (x->len == len && !memcmp(x->name, s, len))
            return x;
    }
}

static void macro_free(qmacro *m)
{
    if (m) {
        free(m->g);
        free(m->q);
        free(m->cf);
        free(m);
    }
}

static void tfree(qtable *t)
{
    for (size_t i = 0; i < t->cap; i++) {
        free(t->t[i].name);
        macro_free(t->t[i].mac);
    }
    free(t->t);
    t->t = NULL;
    t->cap = t->used = 0;
}

/* the entry for s, created if absent; NULL when out of memory */
static qentry *tput(qtable *t, const char *s, size_t len)
{
    qentry *x = tfind(t, s, len);
    if (x)
        return x;
    if ((t->used + 1) * 2 > t->cap) {
        qtable n = {calloc(t->cap ? t->cap * 2 : 64, sizeof(qentry)), t->cap ? t->cap * 2 : 64, 0};
        if (!n.t)
            return NULL;
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->t[i].name)
                continue;
            size_t j = hash(t->t[i].name, t->t[i].len) & (n.cap - 1);
            while (n.t[j].name)
                j = (j + 1) & (n.cap - 1);
            n.t[j] = t->t[i];
            n.used++;
        }
        free(t->t);
        *t = n;
    }
    size_t j = hash(s, len) & (t->cap - 1);
    while (t->t[j].name)
        j = (j + 1) & (t->cap - 1);
    x = &t->t[j];
    if (!(x->name = malloc(len + 1)))
        return NULL;
    memcpy(x->name, s, len);
    x->name[len] = 0;
    x->len = len;
    t->used++;
    return x;
}

/* ------------------------------------------------------------------ the scanner */
typedef struct {
    const char *s;
    size_t i, n;
    int line;
    int depth;
} cur;

static int isid0(int ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_'; }
static int isdig(int ch) { return ch >= '0' && ch <= '9'; }

/* blanks and comments; 0 at a `// pragma` comment or an unterminated one (Lua's) */
static int skip(cur *c)
{
    for (;;) {
        while (c->i < c->n) {
            char ch = c->s[c->i];
            if (ch == '\n')
                c->line++;
            else if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\v' && ch != '\f')
                break;
            c->i++;
        }
        if (c->i + 1 >= c->n || c->s[c->i] != '/')
            return 1;
        if (c->s[c->i + 1] == '/') {
            size_t j = c->i + 2;
            while (j < c->n && (c->s[j] == ' ' || c->s[j] == '\t'))
                j++;
            if (c->n - j >= 6 && !memcmp(c->s + j, "pragma", 6))
                return 0;
            while (j < c->n && c->s[j] != '\n')
                j++;
            c->i = j;
        } else if (c->s[c->i + 1] == '*') {
            const char *e = NULL;
            for (size_t j = c->i + 2; j + 1 < c->n; j++)
                if (c->s[j] == '*' && c->s[j + 1] == '/') {
                    e = c->s + j;
                    break;
                }
            if (!e)
                return 0;
            for (const char *p = c->s + c->i; p < e; p++)
                c->line += *p == '\n';
            c->i = (size_t)(e - c->s) + 2;
        } else {
            return 1;
        }
    }
}

static int accept(cur *c, char ch)
{
    if (!skip(c) || c->i >= c->n || c->s[c->i] != ch)
        return 0;
    c->i++;
    return 1;
}

/* an identifier at the cursor: its length (0 if none) */
static size_t ident(cur *c)
{
    if (!skip(c) || c->i >= c->n || !isid0((unsigned char)c->s[c->i]))
        return 0;
    size_t j = c->i + 1;
    while (j < c->n && (isid0((unsigned char)c->s[j]) || isdig((unsigned char)c->s[j])))
        j++;
    /* a non-ASCII byte continues an identifier in QASM 3 (θ): the Lua side reads those */
    if (j < c->n && ((unsigned char)c->s[j] & 0x80))
        return 0;
    return j - c->i;
}

/* a number: digits [. digits] [e [+-] digits], or . digits — the grammar qasm.lua reads */
static int number(cur *c, double *v)
{
    size_t j = c->i;
    while (j < c->n && isdig((unsigned char)c->s[j]))
        j++;
    if (j < c->n && c->s[j] == '.') {
        j++;
        while (j < c->n && isdig((unsigned char)c->s[j]))
            j++;
    }
    if (j < c->n && (c->s[j] == 'e' || c->s[j] == 'E')) {
        size_t k = j + 1;
        if (k < c->n && (c->s[k] == '+' || c->s[k] == '-'))
            k++;
        if (k < c->n && isdig((unsigned char)c->s[k])) {
            while (k < c->n && isdig((unsigned char)c->s[k]))
                k++;
            j = k;
        }
    }
    char buf[64];
    if (j - c->i >= sizeof buf || j == c->i || (j < c->n && isid0((unsigned char)c->s[j])))
        return 0;
    memcpy(buf, c->s + c->i, j - c->i);
    buf[j - c->i] = 0;
    char *end;
    *v = strtod(buf, &end);
    if (*end)
        return 0;
    c->i = j;
    return 1;
}

static int expr(cur *c, double *v);

static int primary(cur *c, double *v)
{
    if (!skip(c) || c->i >= c->n)
        return 0;
    unsigned char ch = (unsigned char)c->s[c->i];
    if (ch == '(' || ch == '-' || ch == '+') {
        if (++c->depth > MAX_DEPTH)
            return 0;
        c->i++;
        int ok = ch == '(' ? expr(c, v) && accept(c, ')') : primary(c, v);
        if (ch == '-')
            *v = -*v;
        c->depth--;
        return ok;
    }
    if (isdig(ch) || ch == '.')
        return number(c, v);
    if (ch == 0xCF && c->i + 1 < c->n && (unsigned char)c->s[c->i + 1] == 0x80) {   /* UTF-8 π */
        c->i += 2;
        *v = M_PI;
        return 1;
    }
    size_t len = ident(c);
    if (len == 2 && !memcmp(c->s + c->i, "pi", 2))
        *v = M_PI;
    else if (len == 3 && !memcmp(c->s + c->i, "tau", 3))
        *v = 2 * M_PI;
    else
        return 0;   /* a parameter, a function, ... : Lua's */
    c->i += len;
    return 1;
}

static int term(cur *c, double *v)
{
    if (!primary(c, v))
        return 0;
    for (;;) {
        if (!skip(c) || c->i >= c->n)
            return 1;
        char ch = c->s[c->i];
        if (ch != '*' && ch != '/')
            return 1;
        if (c->i + 1 < c->n && c->s[c->i + 1] == '*')
            return 0;   /* ** : Lua's */
        c->i++;
        double w;
        if (!primary(c, &w) || (ch == '/' && w == 0))
            return 0;
        *v = ch == '*' ? *v * w : *v / w;
    }
}

static int expr(cur *c, double *v)
{
    if (!term(c, v))
        return 0;
    for (;;) {
        if (!skip(c) || c->i >= c->n)
            return 1;
        char ch = c->s[c->i];
        if (ch != '+' && ch != '-')
            return 1;
        c->i++;
        double w;
        if (!term(c, &w))
            return 0;
        *v = ch == '+' ? *v + w : *v - w;
    }
}

/* operand: reg or reg[i]; qs gets 1 or size qubits (base..), *cnt their number */
static int operand(cur *c, const qbuilder *B, int *first, int *cnt)
{
    size_t len = ident(c);
    if (!len)
        return 0;
    const qentry *r = tfind(&B->regs, c->s + c->i, len);
    if (!r)
        return 0;
    c->i += len;
    if (!accept(c, '[')) {
        *first = r->base;
        *cnt = r->size;
        return 1;
    }
    skip(c);
    long idx = 0;
    size_t j = c->i;
    while (j < c->n && isdig((unsigned char)c->s[j]) && j - c->i < 9)
        idx = idx * 10 + (c->s[j++] - '0');
    if (j == c->i || idx >= r->size)
        return 0;
    c->i = j;
    if (!accept(c, ']'))
        return 0;
    *first = r->base + (int)idx;
    *cnt = 1;
    return 1;
}

static int flush(qd_circuit *circ, qbuilder *B, qd_err *e)
{
    if (!B->pend_k)
        return 1;
    int k = B->pend_k;
    B->pend_k = 0;
    if (B->nmeas_k == B->cap_k) {
        size_t cap = B->cap_k ? 2 * B->cap_k : 16;
        int *p = realloc(B->meas_k, sizeof(int) * cap);
        if (!p) {
            qd_fail(e, QD_ENOMEM, "not enough memory for a measurement");
            return 0;
        }
        B->meas_k = p;
        B->cap_k = cap;
    }
    B->meas_k[B->nmeas_k++] = k;
    if (B->pend_reset)
        return qd_circuit_add_reset(circ, B->pend_qs, k, e) == QD_OK;
    return qd_circuit_add_measure(circ, B->pend_qs, k, B->pend_discard, e) == QD_OK;
}

/* the ops of one call of macro m with angles par on qubits qs */
static qd_status add_macro(qd_circuit *circ, const qmacro *m, const double *par, const int *qs, qd_err *e)
{
    static const int slot[3] = {-1, -1, -1};
    static const double scale[3] = {0, 0, 0};
    const int np = m->np;
    for (int o = 0; o < m->nops; o++) {
        int q[3];
        double ang[3];
        const qd_gate_info *g = m->g[o];
        for (int i = 0; i < g->nqubits; i++)
            q[i] = qs[m->q[3 * o + i]];
        for (int i = 0; i < g->nparams; i++) {
            const double *cf = m->cf + (size_t)(3 * o + i) * (size_t)(np + 1);
            double v = cf[0];
            for (int j = 0; j < np; j++)
                v += cf[1 + j] * par[j];
            ang[i] = v;
        }
        if (qd_circuit_add_gate(circ, g, q, slot, scale, ang, e) != QD_OK)
            return e->status;
    }
    return QD_OK;
}

/* one gate statement (name already matched as g: a qd gate or a macro); 0: not ours, -1:
 * out of memory */
static int gate_stmt(cur *c, qd_circuit *circ, qbuilder *B, const qentry *g, long budget, long *added,
                     qd_err *e)
{
    double ang[MACRO_MAXP] = {0};
    const qmacro *m = g->mac;
    int na = 0, np = m ? m->np : g->g->nparams, nq = m ? m->nq : g->g->nqubits;
    long per = m ? m->nops : 1;
    if (g->u2) {
        ang[0] = M_PI / 2;
        na = 1;
    }
    if (accept(c, '(') && !accept(c, ')')) {
        do {
            if (na >= MACRO_MAXP || !expr(c, &ang[na]) || !isfinite(ang[na]))
                return 0;
            na++;
        } while (accept(c, ','));
        if (!accept(c, ')'))
            return 0;
    }
    if (na != np)
        return 0;
    int first[MACRO_MAXQ], cnt[MACRO_MAXQ], k = 0, width = 1;
    do {
        if (k >= nq || !operand(c, B, &first[k], &cnt[k]))
            return 0;
        if (cnt[k] > 1) {
            if (width > 1 && cnt[k] != width)
                return 0;
            width = cnt[k];
        }
        k++;
    } while (accept(c, ','));
    if (k != nq || !accept(c, ';') || (per > 0 && (long)width > budget / per))
        return 0;
    /* everything checked before the first op is added: distinct, not discarded */
    for (int w = 0; w < width; w++)
        for (int a = 0; a < nq; a++) {
            int qa = first[a] + (cnt[a] > 1 ? w : 0);
            if ((circ->discarded >> qa) & 1)
                return 0;
            for (int b = 0; b < a; b++)
                if (qa == first[b] + (cnt[b] > 1 ? w : 0))
                    return 0;
        }
    if (!flush(circ, B, e))
        return -1;
    static const int slot[3] = {-1, -1, -1};
    static const double scale[3] = {0, 0, 0};
    for (int w = 0; w < width; w++) {
        int qs[MACRO_MAXQ];
        for (int a = 0; a < nq; a++)
            qs[a] = first[a] + (cnt[a] > 1 ? w : 0);
        if ((m ? add_macro(circ, m, ang, qs, e) : qd_circuit_add_gate(circ, g->g, qs, slot, scale, ang, e)) != QD_OK)
            return -1;
    }
    *added += width * per;
    return 1;
}

/* barrier ...; — skipped when it is plain text up to its ';' */
static int barrier(cur *c)
{
    for (size_t j = c->i; j < c->n; j++) {
        char ch = c->s[j];
        if (ch == ';') {
            for (size_t k = c->i; k < j; k++)
                c->line += c->s[k] == '\n';
            c->i = j + 1;
            return 1;
        }
        if (ch == '/' || ch == '"' || ch == '{' || ch == '}')
            return 0;
    }
    return 0;
}

/* statements from *pos while they are plain; returns -1 on out of memory */
static int scan(cur *c, qd_circuit *circ, qbuilder *B, long budget, long *added, qd_err *e)
{
    for (;;) {
        if (!skip(c) || c->i >= c->n)
            return 0;
        size_t start = c->i;
        int line = c->line;
        size_t len = ident(c);
        int r = 0;
        if (len == 7 && !memcmp(c->s + c->i, "barrier", 7)) {
            c->i += len;
            r = barrier(c);
        } else if (len) {
            const qentry *g = tfind(&B->gates, c->s + c->i, len);
            if (g && (g->g || g->mac)) {
                c->i += len;
                c->depth = 0;
                r = gate_stmt(c, circ, B, g, budget - *added, added, e);
            }
        }
        if (r < 0)
            return -1;
        if (r == 0) {
            c->i = start;
            c->line = line;
            return 0;
        }
    }
}

/* ------------------------------------------------------------------ the Lua type */
static qbuilder *checkb(lua_State *L)
{
    qbuilder *B = luaL_checkudata(L, 1, QDL_QASM);
    if (B->done)
        luaL_argerror(L, 1, "qd.QasmBuilder has finished");
    return B;
}

static qd_circuit *circ_of(lua_State *L)
{
    lua_getiuservalue(L, 1, 2);
    qd_circuit *c = qdL_checkcircuit(L, -1);
    lua_pop(L, 1);
    return c;
}

static int b_gc(lua_State *L)
{
    qbuilder *B = luaL_checkudata(L, 1, QDL_QASM);
    tfree(&B->regs);
    tfree(&B->gates);
    free(B->meas_k);
    B->meas_k = NULL;
    B->done = 1;
    return 0;
}

static int l_builder(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TSTRING);
    qdL_checkcircuit(L, 2);
    qbuilder *B = lua_newuserdatauv(L, sizeof *B, 2);
    memset(B, 0, sizeof *B);
    luaL_setmetatable(L, QDL_QASM);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, -2, 2);
    return 1;
}

static int b_allow(lua_State *L)
{
    qbuilder *B = checkb(L);
    size_t len;
    const char *name = luaL_checklstring(L, 2, &len);
    const qd_gate_info *g = qd_gate_lookup(luaL_checkstring(L, 3));
    if (!g)
        return luaL_argerror(L, 3, "gate name expected");
    qentry *x = tput(&B->gates, name, len);
    if (!x)
        return luaL_error(L, "not enough memory for a gate name");
    x->g = g;
    x->u2 = lua_toboolean(L, 4);
    return 0;
}

static int b_block(lua_State *L)
{
    qbuilder *B = checkb(L);
    size_t len;
    const char *name = luaL_checklstring(L, 2, &len);
    qentry *x = tfind(&B->gates, name, len);
    if (x) {
        x->g = NULL;
        macro_free(x->mac);
        x->mac = NULL;
    }
    return 0;
}

/* S:macro(name, np, nq, ops): ops = {{gate name, {qubit positions (0-based)}, {{c0, c1..cnp}
 * per angle}}, ...}; false if the builder cannot take it (sizes) */
static int b_macro(lua_State *L)
{
    qbuilder *B = checkb(L);
    size_t len;
    const char *name = luaL_checklstring(L, 2, &len);
    lua_Integer np = luaL_checkinteger(L, 3), nq = luaL_checkinteger(L, 4);
    luaL_checktype(L, 5, LUA_TTABLE);
    lua_Integer nops = luaL_len(L, 5);
    if (np < 0 || np > MACRO_MAXP || nq < 1 || nq > MACRO_MAXQ || nops < 0 || nops > MACRO_MAXOPS) {
        lua_pushboolean(L, 0);
        return 1;
    }
    /* the shape first (a Lua error after the allocations below would leak them) */
    for (lua_Integer o = 0; o < nops; o++) {
        int ok = lua_geti(L, 5, o + 1) == LUA_TTABLE && lua_geti(L, -1, 1) == LUA_TSTRING &&
                 lua_geti(L, -2, 2) == LUA_TTABLE && lua_geti(L, -3, 3) == LUA_TTABLE;
        for (int i = 1; ok && i <= 3; i++) {
            int ty = lua_geti(L, -1, i);
            ok = ty == LUA_TTABLE || ty == LUA_TNIL;
            lua_pop(L, 1);
        }
        lua_settop(L, 5);
        if (!ok)
            return luaL_argerror(L, 5, "list of {gate, qubits, angle forms} expected");
    }
    qmacro *m = calloc(1, sizeof *m);
    if (m) {
        m->g = calloc((size_t)nops + 1, sizeof *m->g);
        m->q = calloc(3 * (size_t)nops + 1, sizeof *m->q);
        m->cf = calloc(3 * (size_t)nops * (size_t)(np + 1) + 1, sizeof *m->cf);
    }
    if (!m || !m->g || !m->q || !m->cf) {
        macro_free(m);
        return luaL_error(L, "not enough memory for a gate definition");
    }
    m->np = (int)np;
    m->nq = (int)nq;
    m->nops = (int)nops;
    int ok = 1;
    for (lua_Integer o = 0; o < nops && ok; o++) {
        lua_geti(L, 5, o + 1);
        lua_geti(L, -1, 1);
        const qd_gate_info *g = qd_gate_lookup(lua_tostring(L, -1));
        lua_pop(L, 1);
        ok = g != NULL;
        if (ok) {
            m->g[o] = g;
            lua_geti(L, -1, 2);
            for (int i = 0; i < g->nqubits && ok; i++) {
                lua_geti(L, -1, i + 1);
                lua_Integer v = lua_tointeger(L, -1);
                ok = v >= 0 && v < nq;
                m->q[3 * o + i] = (int)v;
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
            lua_geti(L, -1, 3);
            for (int i = 0; i < g->nparams && ok; i++) {
                lua_geti(L, -1, i + 1);
                for (int j = 0; j <= np; j++) {
                    lua_geti(L, -1, j + 1);
                    m->cf[(size_t)(3 * o + i) * (size_t)(np + 1) + (size_t)j] = lua_tonumber(L, -1);
                    lua_pop(L, 1);
                }
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    qentry *x = ok ? tput(&B->gates, name, len) : NULL;
    if (!x) {
        macro_free(m);
        if (ok)
            return luaL_error(L, "not enough memory for a gate definition");
        lua_pushboolean(L, 0);
        return 1;
    }
    macro_free(x->mac);
    x->mac = m;
    x->g = NULL;
    lua_pushboolean(L, 1);
    return 1;
}

static int b_reg(lua_State *L)
{
    qbuilder *B = checkb(L);
    size_t len;
    const char *name = luaL_checklstring(L, 2, &len);
    lua_Integer base = luaL_checkinteger(L, 3), size = luaL_checkinteger(L, 4);
    if (base < 0 || size < 1 || base + size > QD_MAX_QUBITS)
        return luaL_argerror(L, 3, "register out of range");
    qentry *x = tput(&B->regs, name, len);
    if (!x)
        return luaL_error(L, "not enough memory for a register name");
    x->base = (int)base;
    x->size = (int)size;
    return 0;
}

static int b_scan(lua_State *L)
{
    qbuilder *B = checkb(L);
    qd_circuit *circ = circ_of(L);
    size_t n;
    lua_getiuservalue(L, 1, 1);
    const char *s = lua_tolstring(L, -1, &n);
    lua_Integer pos = luaL_checkinteger(L, 2), line = luaL_checkinteger(L, 3);
    lua_Integer budget = luaL_checkinteger(L, 4);
    if (pos < 1 || (size_t)pos > n + 1 || line < 1 || line > INT_MAX)
        return luaL_argerror(L, 2, "position out of range");
    cur c = {s, (size_t)pos - 1, n, (int)line, 0};
    long added = 0;
    qd_err e;
    if (scan(&c, circ, B, budget > LONG_MAX ? LONG_MAX : (long)budget, &added, &e) < 0)
        return luaL_error(L, "%s", e.msg);
    lua_pushinteger(L, (lua_Integer)c.i + 1);
    lua_pushinteger(L, c.line);
    lua_pushinteger(L, added);
    return 3;
}

static int b_flush(lua_State *L)
{
    qbuilder *B = checkb(L);
    qd_err e;
    if (!flush(circ_of(L), B, &e))
        return luaL_error(L, "%s", e.msg);
    return 0;
}

/* S:measure(qubits [, reset]) -> mi, pos: joined with a pending measurement (reset) of other
 * qubits (up to 30); mi is the op's index among the circuit's measurements and resets
 * (0-based, as outcomes are indexed), pos the position of the first of these qubits in it */
static int b_measure(lua_State *L)
{
    qbuilder *B = checkb(L);
    qd_circuit *circ = circ_of(L);
    int qs[QD_MAX_QUBITS];
    int k = qdL_checkqubits(L, 2, circ->n, qs, 0);
    int reset = lua_toboolean(L, 3);
    if (k > 30)   /* the circuit's limit per measurement op (and the size of pend_qs) */
        return luaL_error(L, "%s: at most 30 qubits at once, got %d", reset ? "reset" : "measure", k);
    int clash = B->pend_k && (B->pend_discard || B->pend_k + k > 30 || B->pend_reset != reset);
    for (int i = 0; i < k && !clash; i++)
        for (int j = 0; j < B->pend_k; j++)
            clash |= qs[i] == B->pend_qs[j];
    qd_err e;
    if (clash && !flush(circ, B, &e))
        return luaL_error(L, "%s", e.msg);
    for (int i = 0; i < k; i++)
        if ((circ->discarded >> qs[i]) & 1)
            return luaL_error(L, "%s: qubit %d was discarded by an earlier measurement",
                              reset ? "reset" : "measure", qs[i]);
    lua_pushinteger(L, circ->nmeas);
    lua_pushinteger(L, B->pend_k);
    memcpy(B->pend_qs + B->pend_k, qs, sizeof(int) * (size_t)k);
    B->pend_k += k;
    B->pend_discard = 0;
    B->pend_reset = reset;
    return 2;
}

/* S:discard(qubits) -> true if they are exactly the pending measurement's (now discarded) */
static int b_discard(lua_State *L)
{
    qbuilder *B = checkb(L);
    qd_circuit *circ = circ_of(L);
    int qs[QD_MAX_QUBITS];
    int k = qdL_checkqubits(L, 2, circ->n, qs, 1);
    int ok = B->pend_k > 0 && !B->pend_discard && !B->pend_reset;
    for (int j = 0; j < B->pend_k && ok; j++) {
        int in = 0;
        for (int i = 0; i < k; i++)
            in |= qs[i] == B->pend_qs[j];
        ok = in;
    }
    if (ok)
        B->pend_discard = 1;
    lua_pushboolean(L, ok);
    return 1;
}

static int b_pending(lua_State *L)
{
    qbuilder *B = checkb(L);
    if (B->pend_k)
        lua_pushstring(L, B->pend_reset ? "reset" : "measure");
    else
        lua_pushnil(L);
    return 1;
}

/* S:condition{bits = {{mi, pos, val}, ...}, neg = b}: the last op added runs only when bit
 * pos (position in its qubit list) of measurement mi (0-based) is val for all of them (or,
 * neg, unless so) */
static int b_condition(lua_State *L)
{
    qbuilder *B = checkb(L);
    qd_circuit *circ = circ_of(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    int mi[QD_COND_MAX], bit[QD_COND_MAX], val[QD_COND_MAX];
    lua_getfield(L, 2, "bits");
    lua_Integer n = luaL_len(L, -1);
    if (n < 1 || n > QD_COND_MAX)
        return luaL_error(L, "a condition on 1..%d measured bits expected, got %d", QD_COND_MAX, (int)n);
    for (lua_Integer i = 0; i < n; i++) {
        lua_geti(L, -1, i + 1);
        lua_Integer t[3];
        for (int j = 0; j < 3; j++) {
            lua_geti(L, -1 - j, j + 1);
            t[j] = lua_tointeger(L, -1);
        }
        lua_pop(L, 4);
        if (t[0] < 0 || (size_t)t[0] >= B->nmeas_k || t[1] < 0 || t[1] >= B->meas_k[t[0]])
            return luaL_error(L, "condition on a bit that was not measured");
        mi[i] = (int)t[0];
        bit[i] = B->meas_k[t[0]] - 1 - (int)t[1];   /* qs[0] is the outcome's most significant bit */
        val[i] = t[2] != 0;
    }
    lua_getfield(L, 2, "neg");
    qd_err e;
    if (circ->nops == 0 || qd_circuit_set_cond(circ, circ->nops - 1, mi, bit, val, (int)n, lua_toboolean(L, -1), &e) != QD_OK)
        return luaL_error(L, "%s", circ->nops ? e.msg : "condition without an op");
    return 0;
}

static int b_finish(lua_State *L)
{
    qbuilder *B = checkb(L);
    qd_circuit *circ = circ_of(L);
    int nq = (int)luaL_checkinteger(L, 2);
    qd_err e;
    if (!flush(circ, B, &e) || qd_circuit_shrink(circ, nq, &e) != QD_OK)
        return luaL_error(L, "%s", e.msg);
    b_gc(L);
    return 0;
}

void qdL_open_qasm(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"allow", b_allow}, {"block", b_block}, {"reg", b_reg}, {"scan", b_scan}, {"flush", b_flush},
        {"measure", b_measure}, {"discard", b_discard}, {"pending", b_pending}, {"finish", b_finish},
        {"condition", b_condition}, {"macro", b_macro},
        {NULL, NULL}};
    static const luaL_Reg meta[] = {{"__gc", b_gc}, {"__close", b_gc}, {NULL, NULL}};
    qdL_newclass(L, QDL_QASM, methods, NULL, meta);
    lua_pop(L, 1);
    lua_pushcfunction(L, l_builder);
    lua_setfield(L, -2, "qasm_builder");
}
