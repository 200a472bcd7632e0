/* lua_circuit.c — qd.Circuit: parameterised circuits (core: circuit.c, adjoint.c).
 *
 *   local c = qd.circuit(3)
 *   c:h(0):cx(0, 1)              -- fixed gates
 *   c:rx(0, 0.5)                 -- a number is a FIXED angle
 *   c:ry(1, "a")                 -- a string names a slot (created at first use, reused after)
 *   c:rz(2, {3})                 -- {i}: slot number i (1-based; slots up to i are created)
 *   c:rz(2, {"a", scale=2, offset=0.1})   -- angle = 0.1 + 2 * theta_a
 *   c:ry(0)                      -- angle omitted: a NEW unnamed slot (next number)
 *   c:add_unitary(U, {0, 1} [, "name"])   -- arbitrary unitary (no parameters)
 *   c:measure({0} [, {discard=true}]), c:reset({1})
 *
 * Parameters are passed as a qd.Vector or a table of c:nparams() numbers, slot i at [i].
 * draw/to_qasm are in Lua (stdlib/qd/qasm.lua), using c:ops(). */
#include "lua_util.h"
#include "qd_circuit.h"
#include <math.h>
#include <string.h>
#include <stdio.h>

#define QDL_CIRCUIT "qd.Circuit"
#define MAX_EXPECTED_BRANCHES 4096

typedef struct {
    qd_circuit c;
    int freed;   /* c:free() or a to-be-closed variable released it */
} qdl_circ;

static qdl_circ *checkcirc(lua_State *L, int idx)
{
    qdl_circ *C = luaL_checkudata(L, idx, QDL_CIRCUIT);
    if (C->freed)
        luaL_argerror(L, idx, "qd.Circuit has been freed");
    return C;
}

qd_circuit *qdL_checkcircuit(lua_State *L, int idx)
{
    return &checkcirc(L, idx)->c;
}

static qdl_circ *newcirc(lua_State *L, int n)
{
    qdl_circ *C = lua_newuserdatauv(L, sizeof *C, 0);
    C->freed = 0;
    qd_circuit_init(&C->c, n);
    luaL_setmetatable(L, QDL_CIRCUIT);
    return C;
}

static int raise_err(lua_State *L, const qd_err *e)
{
    return luaL_error(L, "%s", e->msg);
}

/* qd.circuit(n) */
static int l_circuit(lua_State *L)
{
    qdL_checknargs(L, 1);
    int n = qdL_checknqubits(L, 1, QD_MAX_QUBITS);
    newcirc(L, n);
    return 1;
}

static int l_circuit_call(lua_State *L)
{
    lua_remove(L, 1);
    return l_circuit(L);
}

/* ------------------------------------------------------------------ building */
/* slot index (0-based) for a slot reference: string name, or integer (1-based) */
static int slot_ref(lua_State *L, qd_circuit *c, int arg, int vidx, int dry)
{
    qd_err e;
    if (lua_type(L, vidx) == LUA_TSTRING) {
        const char *name = lua_tostring(L, vidx);
        if (!*name)
            luaL_argerror(L, arg, "non-empty parameter name expected");
        if (dry)
            return -1;
        int s = qd_circuit_slot(c, name, 1, &e);
        if (s < 0)
            raise_err(L, &e);
        return s;
    }
    int isnum = 0;
    lua_Integer i = lua_tointegerx(L, vidx, &isnum);
    if (!isnum || i < 1 || i > QD_CIRC_MAXSLOTS)
        luaL_argerror(L, arg, lua_pushfstring(L, "parameter slot (name or number 1..%d) expected", QD_CIRC_MAXSLOTS));
    if (dry)
        return -1;
    if (qd_circuit_ensure_slots(c, (int)i, &e) != QD_OK)
        raise_err(L, &e);
    return (int)i - 1;
}

/* one angle argument -> slot/scale/offset; dry != 0 only validates (creates no slot), so a
 * call that fails on a later argument leaves the circuit unchanged */
static void angle_spec(lua_State *L, qd_circuit *c, int arg, int *slot, double *sc, double *off,
                       int dry)
{
    *slot = -1;
    *sc = 1;
    *off = 0;
    int t = lua_type(L, arg);
    if (t == LUA_TNONE || t == LUA_TNIL) {
        qd_err e;
        if (dry)
            return;
        int s = c->nslots;
        if (qd_circuit_ensure_slots(c, s + 1, &e) != QD_OK)
            raise_err(L, &e);
        *slot = s;
    } else if (t == LUA_TNUMBER) {
        *off = lua_tonumber(L, arg);
        if (!isfinite(*off))
            luaL_argerror(L, arg, "finite angle expected, got nan or inf");
    } else if (t == LUA_TSTRING) {
        *slot = slot_ref(L, c, arg, arg, dry);
    } else if (t == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, arg)) {
            lua_pop(L, 1);
            int ok = lua_type(L, -1) == LUA_TSTRING
                         ? (strcmp(lua_tostring(L, -1), "scale") == 0 || strcmp(lua_tostring(L, -1), "offset") == 0)
                         : (lua_isinteger(L, -1) && lua_tointeger(L, -1) == 1);
            if (!ok)
                luaL_argerror(L, arg, "slot reference {slot [, scale=] [, offset=]} expected (unknown key)");
        }
        if (lua_geti(L, arg, 1) == LUA_TNIL)
            luaL_argerror(L, arg, "slot reference {slot [, scale=] [, offset=]} expected (no slot at [1])");
        *slot = slot_ref(L, c, arg, lua_gettop(L), dry);
        lua_pop(L, 1);
        *sc = qdL_optnum(L, arg, "scale", 1, -INFINITY, INFINITY, 0);
        *off = qdL_optnum(L, arg, "offset", 0, -INFINITY, INFINITY, 0);
    } else {
        luaL_argerror(L, arg, lua_pushfstring(L, "angle (number), parameter name, {slot, scale=, "
                                                 "offset=} or nothing (new parameter) expected, got %s",
                                              luaL_typename(L, arg)));
    }
}

static int gate_method(lua_State *L)
{
    const qd_gate_info *g = lua_touserdata(L, lua_upvalueindex(1));
    qdl_circ *C = checkcirc(L, 1);
    qd_circuit *c = &C->c;
    int k = g->nqubits, np = g->nparams;
    qdL_checknargs(L, 1 + k + np);
    if (c->n < k)
        return luaL_error(L, "'%s' acts on %d qubits, the circuit has %d", g->name, k, c->n);
    int qs[3];
    for (int i = 0; i < k; i++) {
        qs[i] = qdL_checkqubit(L, 2 + i, c->n);
        for (int j = 0; j < i; j++)
            if (qs[j] == qs[i])
                luaL_argerror(L, 2 + i, lua_pushfstring(L, "distinct qubits expected, got qubit %d twice", qs[i]));
        if ((c->discarded >> qs[i]) & 1)
            luaL_argerror(L, 2 + i, lua_pushfstring(L, "qubit %d was discarded by an earlier measurement", qs[i]));
    }
    int slot[3];
    double sc[3], off[3];
    for (int i = 0; i < np; i++)
        angle_spec(L, c, 2 + k + i, &slot[i], &sc[i], &off[i], 1);
    for (int i = 0; i < np; i++)
        angle_spec(L, c, 2 + k + i, &slot[i], &sc[i], &off[i], 0);
    qd_err e;
    if (qd_circuit_add_gate(c, g, qs, slot, sc, off, &e) != QD_OK)
        return raise_err(L, &e);
    lua_settop(L, 1);
    return 1;
}

/* c:add_unitary(U, {q...} [, name]) */
static int m_add_unitary(lua_State *L)
{
    qdl_circ *C = checkcirc(L, 1);
    qdL_checknargs(L, 4);
    int qs[QD_MAX_QUBITS];
    int k = qdL_checkqubits(L, 3, C->c.n, qs, 0);
    if (k > QD_CIRC_MAXK)
        luaL_argerror(L, 3, "at most 12 target qubits expected");
    const char *label = luaL_optstring(L, 4, NULL);
    qd_c *m = qdL_checkunitary(L, 2, k);
    qd_err e;
    if (qd_circuit_add_matrix(&C->c, qs, k, m, label, &e) != QD_OK)
        return raise_err(L, &e);
    lua_settop(L, 1);
    return 1;
}

/* c:channel(ch, qubits [, {at = k}]) — noise: the qd.Channel ch (its Kraus list, ch:kraus())
 * on the qubits, exact on density matrices, a quantum trajectory on states and ensembles;
 * at the end, or before op k */
static int m_channel(lua_State *L)
{
    qdl_circ *C = checkcirc(L, 1);
    qdL_checknargs(L, 4);
    static const char *const opts[] = {"at", NULL};
    qdL_checkoptions(L, 4, opts);
    lua_Integer at = (lua_Integer)C->c.nops + 1;   /* {at = k}: before op k (1-based) */
    if (lua_istable(L, 4) && lua_getfield(L, 4, "at") != LUA_TNIL) {
        int isint = 0;
        at = lua_tointegerx(L, -1, &isint);
        if (!isint || at < 1 || at > (lua_Integer)C->c.nops + 1)
            return luaL_argerror(L, 4, lua_pushfstring(L, "option 'at': op position 1..%I expected",
                                                       (LUAI_UACINT)C->c.nops + 1));
        lua_pop(L, 1);
    }
    if (!luaL_testudata(L, 2, "qd.Channel"))
        return luaL_argerror(L, 2, lua_pushfstring(L, "qd.Channel expected, got %s", luaL_typename(L, 2)));
    lua_getfield(L, 2, "n");
    int k = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 0;
    lua_pop(L, 1);
    if (k < 1 || k > 6)
        return luaL_argerror(L, 2, "a channel on 1..6 qubits expected (a register-wide depolarizing "
                                   "channel has no fixed size: give it n=)");
    int qs[QD_MAX_QUBITS];
    int kq = qdL_checkqubits(L, 3, C->c.n, qs, 0);
    if (kq != k)
        return luaL_argerror(L, 3, lua_pushfstring(L, "%d qubit%s for a %d-qubit channel expected, got %d", k,
                                                   k == 1 ? "" : "s", k, kq));
    /* its Kraus operators, through the channel's own method */
    lua_getfield(L, 2, "kraus");
    lua_pushvalue(L, 2);
    lua_call(L, 1, 1);
    int kt = lua_gettop(L);
    size_t m = (size_t)luaL_len(L, kt), dk = (size_t)1 << k;
    if (m < 1 || m > dk * dk)
        return luaL_argerror(L, 2, "channel without a usable Kraus list");
    qd_c *K = qdL_scratch(L, m * dk * dk, sizeof(qd_c), "the channel's Kraus operators");
    for (size_t i = 0; i < m; i++) {
        lua_geti(L, kt, (lua_Integer)i + 1);
        qdl_array *A = qdL_checkarray(L, -1);
        if (A->rows != dk || A->cols != dk)
            return luaL_argerror(L, 2, "channel with Kraus operators of the wrong size");
        for (size_t j = 0; j < dk * dk; j++)
            K[i * dk * dk + j] = qdL_array_get(A, j);
        lua_pop(L, 1);
    }
    lua_getfield(L, 2, "name");
    const char *label = lua_tostring(L, -1);
    qd_err e;
    if (qd_circuit_add_channel(&C->c, qs, k, K, m, label, &e) != QD_OK)
        return raise_err(L, &e);
    if ((size_t)at <= C->c.nops - 1) {   /* move it from the end to position at */
        qd_op op = C->c.ops[C->c.nops - 1];
        memmove(&C->c.ops[at], &C->c.ops[at - 1], sizeof(qd_op) * (C->c.nops - (size_t)at));
        C->c.ops[at - 1] = op;
    }
    lua_settop(L, 1);
    return 1;
}

/* c:measure(qubits [, {discard=false}]) */
static int m_measure(lua_State *L)
{
    qdl_circ *C = checkcirc(L, 1);
    qdL_checknargs(L, 3);
    int qs[QD_MAX_QUBITS];
    int k = qdL_checkqubits(L, 2, C->c.n, qs, 0);
    static const char *const opts[] = {"discard", NULL};
    qdL_checkoptions(L, 3, opts);
    int discard = qdL_optbool(L, 3, "discard", 0);
    qd_err e;
    if (qd_circuit_add_measure(&C->c, qs, k, discard, &e) != QD_OK)
        return luaL_argerror(L, 2, e.msg);
    lua_settop(L, 1);
    return 1;
}

static int m_reset(lua_State *L)
{
    qdl_circ *C = checkcirc(L, 1);
    qdL_checknargs(L, 2);
    int qs[QD_MAX_QUBITS];
    int k = qdL_checkqubits(L, 2, C->c.n, qs, 0);
    qd_err e;
    if (qd_circuit_add_reset(&C->c, qs, k, &e) != QD_OK)
        return luaL_argerror(L, 2, e.msg);
    lua_settop(L, 1);
    return 1;
}

static int m_nparams(lua_State *L)
{
    qdl_circ *C = checkcirc(L, 1);
    qdL_checknargs(L, 1);
    lua_pushinteger(L, C->c.nslots);
    return 1;
}

/* c:param(name) -> slot number (created if new); c:param() -> a new unnamed slot's number */
static int m_param(lua_State *L)
{
    qdl_circ *C = checkcirc(L, 1);
    qdL_checknargs(L, 2);
    qd_err e;
    if (lua_isnoneornil(L, 2)) {
        if (qd_circuit_ensure_slots(&C->c, C->c.nslots + 1, &e) != QD_OK)
            return raise_err(L, &e);
        lua_pushinteger(L, C->c.nslots);
        return 1;
    }
    const char *name = luaL_checkstring(L, 2);
    if (!*name)
        return luaL_argerror(L, 2, "non-empty parameter name expected");
    int s = qd_circuit_slot(&C->c, name, 1, &e);
    if (s < 0)
        return raise_err(L, &e);
    lua_pushinteger(L, s + 1);
    return 1;
}

/* c:param_index(name) -> number or nil */
static int m_param_index(lua_State *L)
{
    qdl_circ *C = checkcirc(L, 1);
    qdL_checknargs(L, 2);
    int s = qd_circuit_slot(&C->c, luaL_checkstring(L, 2), 0, NULL);
    if (s < 0)
        lua_pushnil(L);
    else
        lua_pushinteger(L, s + 1);
    return 1;
}

/* c:param_names() -> {[i] = name} (unnamed slots absent) */
static int m_param_names(lua_State *L)
{
    qdl_circ *C = checkcirc(L, 1);
    qdL_checknargs(L, 1);
    lua_createtable(L, C->c.nslots, 0);
    for (int i = 0; i < C->c.nslots; i++)
        if (C->c.names && C->c.names[i]) {
            lua_pushstring(L, C->c.names[i]);
            lua_rawseti(L, -2, i + 1);
        }
    return 1;
}

static void push_qubits(lua_State *L, const int *qs, int k)
{
    lua_createtable(L, k, 0);
    for (int i = 0; i < k; i++) {
        lua_pushinteger(L, qs[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

/* c:ops() -> list of {kind=, name=, qubits={...}, params={{slot=, scale=, offset=} | {value=}},
 * matrix= (qd.Matrix), discard=} — what draw/to_qasm read. */
static int m_ops(lua_State *L)
{
    qdl_circ *C = checkcirc(L, 1);
    qdL_checknargs(L, 1);
    qd_circuit *c = &C->c;
    lua_createtable(L, (int)c->nops, 0);
    for (size_t o = 0; o < c->nops; o++) {
        const qd_op *op = &c->ops[o];
        lua_createtable(L, 0, 5);
        static const char *const kinds[] = {"gate", "unitary", "measure", "reset", "channel"};
        lua_pushstring(L, kinds[op->kind]);
        lua_setfield(L, -2, "kind");
        push_qubits(L, op->qs, op->k);
        lua_setfield(L, -2, "qubits");
        if (op->kind == QD_OP_GATE) {
            lua_pushstring(L, op->g->name);
            lua_setfield(L, -2, "name");
            lua_createtable(L, op->g->nparams, 0);
            for (int i = 0; i < op->g->nparams; i++) {
                lua_createtable(L, 0, 3);
                if (op->slot[i] >= 0) {
                    lua_pushinteger(L, op->slot[i] + 1);
                    lua_setfield(L, -2, "slot");
                    lua_pushnumber(L, op->scale[i]);
                    lua_setfield(L, -2, "scale");
                    lua_pushnumber(L, op->offset[i]);
                    lua_setfield(L, -2, "offset");
                    if (c->names && c->names[op->slot[i]]) {
                        lua_pushstring(L, c->names[op->slot[i]]);
                        lua_setfield(L, -2, "name");
                    }
                } else {
                    lua_pushnumber(L, op->offset[i]);
                    lua_setfield(L, -2, "value");
                }
                lua_rawseti(L, -2, i + 1);
            }
            lua_setfield(L, -2, "params");
        } else if (op->kind == QD_OP_CHANNEL) {
            size_t dk = (size_t)1 << op->k;
            lua_pushstring(L, op->label ? op->label : "channel");
            lua_setfield(L, -2, "name");
            lua_createtable(L, (int)op->nkraus, 0);
            for (size_t i = 0; i < op->nkraus; i++) {
                qdl_array *a = qdL_newarray(L, dk, dk, 1, 0);
                memcpy(a->data, op->m + i * dk * dk, sizeof(qd_c) * dk * dk);
                lua_rawseti(L, -2, (lua_Integer)i + 1);
            }
            lua_setfield(L, -2, "kraus");
        } else if (op->kind == QD_OP_MATRIX) {
            size_t dk = (size_t)1 << op->k;
            qdl_array *a = qdL_newarray(L, dk, dk, 1, 0);
            memcpy(a->data, op->m, sizeof(qd_c) * dk * dk);
            lua_setfield(L, -2, "matrix");
            lua_pushstring(L, op->label ? op->label : "U");
            lua_setfield(L, -2, "name");
        } else {
            lua_pushstring(L, op->kind == QD_OP_MEASURE ? "measure" : "reset");
            lua_setfield(L, -2, "name");
            lua_pushboolean(L, op->discard);
            lua_setfield(L, -2, "discard");
        }
        if (op->cond) {   /* {neg = b, {measurement = i, bit = b, value = v}, ...} (1-based i) */
            lua_createtable(L, op->ncond, 1);
            for (int i = 0; i < op->ncond; i++) {
                lua_createtable(L, 0, 3);
                lua_pushinteger(L, op->cond[2 * i] + 1);
                lua_setfield(L, -2, "measurement");
                lua_pushinteger(L, op->cond[2 * i + 1]);
                lua_setfield(L, -2, "bit");
                lua_pushinteger(L, op->cond[2 * op->ncond + i]);
                lua_setfield(L, -2, "value");
                lua_rawseti(L, -2, i + 1);
            }
            lua_pushboolean(L, op->cond_neg);
            lua_setfield(L, -2, "neg");
            lua_setfield(L, -2, "condition");
        }
        lua_rawseti(L, -2, (lua_Integer)o + 1);
    }
    return 1;
}

static int m_copy(lua_State *L)
{
    qdl_circ *C = checkcirc(L, 1);
    qdL_checknargs(L, 1);
    qdl_circ *D = newcirc(L, C->c.n);
    qd_err e;
    if (qd_circuit_copy(&D->c, &C->c, &e) != QD_OK)
        return raise_err(L, &e);
    return 1;
}

static int m_inverse(lua_State *L)
{
    qdl_circ *C = checkcirc(L, 1);
    qdL_checknargs(L, 1);
    qdl_circ *D = newcirc(L, C->c.n);
    qd_err e;
    if (qd_circuit_inverse(&D->c, &C->c, &e) != QD_OK)
        return raise_err(L, &e);
    return 1;
}

/* c:append(other [, qubit_map]): other's ops after c's; other's qubit q goes to
 * qubit_map[q+1] (default q). Named slots are matched by name (created if absent);
 * unnamed slots of other become new slots of c. */
static int m_append(lua_State *L)
{
    qdl_circ *C = checkcirc(L, 1);
    qdL_checknargs(L, 3);
    qdl_circ *O = checkcirc(L, 2);
    if (O == C)
        return luaL_argerror(L, 2, "a different circuit expected (copy it first)");
    int map[QD_MAX_QUBITS];
    if (lua_isnoneornil(L, 3)) {
        if (O->c.n > C->c.n)
            return luaL_argerror(L, 2, lua_pushfstring(L, "circuit of at most %d qubits expected, got %d (give a qubit map)",
                                                       C->c.n, O->c.n));
        for (int q = 0; q < O->c.n; q++)
            map[q] = q;
    } else {
        int k = qdL_checkqubits(L, 3, C->c.n, map, 0);
        if (k != O->c.n)
            return luaL_argerror(L, 3, lua_pushfstring(L, "qubit map of %d entries expected, got %d", O->c.n, k));
    }
    qd_circuit tmp;
    qd_err e;
    if (qd_circuit_copy(&tmp, &C->c, &e) != QD_OK)
        return raise_err(L, &e);
    int *smap = lua_newuserdatauv(L, sizeof(int) * (size_t)(O->c.nslots + 1), 0);
    qd_status st = QD_OK;
    for (int s = 0; s < O->c.nslots && st == QD_OK; s++) {
        if (O->c.names && O->c.names[s]) {
            smap[s] = qd_circuit_slot(&tmp, O->c.names[s], 1, &e);
            if (smap[s] < 0)
                st = e.status;
        } else {
            smap[s] = tmp.nslots;
            st = qd_circuit_ensure_slots(&tmp, tmp.nslots + 1, &e);
        }
    }
    const int mbase = tmp.nmeas;   /* conditions of appended ops: their measurements move */
    for (size_t o = 0; o < O->c.nops && st == QD_OK; o++) {
        const qd_op *op = &O->c.ops[o];
        int qs[QD_CIRC_MAXK];
        for (int i = 0; i < op->k; i++)
            qs[i] = map[op->qs[i]];
        if (op->kind == QD_OP_GATE) {
            int slot[3];
            for (int i = 0; i < 3; i++)
                slot[i] = op->slot[i] >= 0 ? smap[op->slot[i]] : -1;
            st = qd_circuit_add_gate(&tmp, op->g, qs, slot, op->scale, op->offset, &e);
        } else if (op->kind == QD_OP_MATRIX) {
            st = qd_circuit_add_matrix(&tmp, qs, op->k, op->m, op->label, &e);
        } else if (op->kind == QD_OP_CHANNEL) {
            st = qd_circuit_add_channel(&tmp, qs, op->k, op->m, op->nkraus, op->label, &e);
        } else if (op->kind == QD_OP_MEASURE) {
            st = qd_circuit_add_measure(&tmp, qs, op->k, op->discard, &e);
        } else {
            st = qd_circuit_add_reset(&tmp, qs, op->k, &e);
        }
        if (st == QD_OK && op->cond) {
            int mi[QD_COND_MAX];
            for (int i = 0; i < op->ncond; i++)
                mi[i] = op->cond[2 * i] + mbase;
            int bit[QD_COND_MAX];
            for (int i = 0; i < op->ncond; i++)
                bit[i] = op->cond[2 * i + 1];
            st = qd_circuit_set_cond(&tmp, tmp.nops - 1, mi, bit, op->cond + 2 * op->ncond, op->ncond,
                                     op->cond_neg, &e);
        }
    }
    if (st != QD_OK) {
        qd_circuit_free(&tmp);
        return raise_err(L, &e);
    }
    qd_circuit_free(&C->c);
    C->c = tmp;
    lua_settop(L, 1);
    return 1;
}

/* ------------------------------------------------------------------ arguments of runs */
/* parameters at arg: qd.Vector (real) or table of nslots numbers; nil allowed when the
 * circuit has no slots. Returns a copy (GC-managed userdata, pushed). */
static double *checkparams(lua_State *L, int arg, const qd_circuit *c)
{
    int m = c->nslots;
    double *th = lua_newuserdatauv(L, sizeof(double) * (size_t)(m ? m : 1), 0);
    if (lua_isnoneornil(L, arg)) {
        if (m)
            luaL_argerror(L, arg, lua_pushfstring(L, "parameters (qd.Vector or table of %d numbers) expected, got %s",
                                                  m, luaL_typename(L, arg)));
        return th;
    }
    qdl_array *v = qdL_testarray(L, arg);
    if (v) {
        if (v->cplx || v->rows * v->cols != (size_t)m)
            luaL_argerror(L, arg, lua_pushfstring(L, "real qd.Vector of %d parameters expected, got %s of %d",
                                                  m, v->cplx ? "a complex array" : "an array", (int)(v->rows * v->cols)));
        if (m)   /* an empty Vector has no buffer (memcpy from NULL is undefined) */
            memcpy(th, v->data, sizeof(double) * (size_t)m);
    } else if (lua_istable(L, arg)) {
        /* an array of m numbers and nothing else (a misplaced options table is not an
         * empty parameter list) */
        lua_pushnil(L);
        while (lua_next(L, arg)) {
            lua_pop(L, 1);
            if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1)
                luaL_argerror(L, arg, lua_pushfstring(L, "parameters (qd.Vector or array of %d numbers) expected, got key '%s'", m,
                                                      luaL_tolstring(L, -1, NULL)));
        }
        lua_Integer len = luaL_len(L, arg);
        if (len != m)
            luaL_argerror(L, arg, lua_pushfstring(L, "%d parameters expected, got %d", m, (int)len));
        for (int i = 0; i < m; i++) {
            lua_geti(L, arg, i + 1);
            if (lua_type(L, -1) != LUA_TNUMBER)
                luaL_argerror(L, arg, lua_pushfstring(L, "number expected at parameter %d, got %s", i + 1, luaL_typename(L, -1)));
            th[i] = lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
    } else {
        luaL_argerror(L, arg, lua_pushfstring(L, "parameters (qd.Vector or table of %d numbers) expected, got %s", m,
                                              luaL_typename(L, arg)));
    }
    for (int i = 0; i < m; i++)
        if (!isfinite(th[i]))
            luaL_argerror(L, arg, lua_pushfstring(L, "finite parameters expected (parameter %d)", i + 1));
    return th;
}

static qdl_reg *checkinput(lua_State *L, int arg, const qd_circuit *c)
{
    qdl_reg *x = qdL_checkreg(L, arg);
    if (x->n != c->n)
        luaL_argerror(L, arg, lua_pushfstring(L, "%d-qubit input expected (the circuit's size), got %d qubits", c->n, x->n));
    return x;
}

/* outcomes at arg (qd.Matrix N x nmeas or qd.Vector when nmeas == 1) -> size_t array
 * member-major (pushed userdata) */
static size_t *checkoutcomes(lua_State *L, int arg, const char *what, const qd_circuit *c, size_t N)
{
    size_t nm = (size_t)c->nmeas;
    qdl_array *a = qdL_testarray(L, arg);
    if (!a || a->cplx || a->rows != N || a->cols != nm)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s: real %dx%d qd.Matrix of outcomes (members x measurements) expected",
                                              what, (int)N, (int)nm));
    size_t *oc = lua_newuserdatauv(L, sizeof(size_t) * N * nm, 0);
    const double *v = a->data;
    for (size_t j = 0; j < N; j++)
        for (size_t i = 0; i < nm; i++) {
            double x = v[j + i * N];
            if (!(x >= 0 && x < 1e15 && x == floor(x)))
                luaL_argerror(L, arg, lua_pushfstring(L, "%s: non-negative integer outcomes expected (member %d)", what, (int)j + 1));
            oc[j * nm + i] = (size_t)x;
        }
    return oc;
}

static void push_outcomes(lua_State *L, const qd_circuit *c, const size_t *oc, size_t N)
{
    size_t nm = (size_t)c->nmeas;
    qdl_array *a = qdL_newarray(L, N, nm, 0, 0);
    double *v = a->data;
    for (size_t j = 0; j < N; j++)
        for (size_t i = 0; i < nm; i++)
            v[j + i * N] = (double)oc[j * nm + i];
}

/* Run c on x: pushes the output object. oc: fixed outcomes (fixed != 0) or where sampled
 * ones go; rng used when sampling. prob (count) optional. inplace: result in x. */
static void run_into(lua_State *L, qd_circuit *c, qdl_reg *x, const double *th, size_t *oc,
                     int fixed, int allow_zero, qd_rng *rng, double *prob, const qd_shift *sh,
                     int inplace, uint64_t first)
{
    qd_err e;
    qd_status st;
    int nout = qd_circuit_nout(c, NULL);
    qdl_reg *w = x;
    if (!inplace) {
        w = qdL_newreg_uninit(L, x->kind, c->n, x->count);
        memcpy(w->a, x->a, x->bytes);
    }
    if (x->kind == QDL_K_DM) {
        st = qd_circuit_run_dm(c, th, w->a, sh, &e);
        if (st != QD_OK)
            raise_err(L, &e);
        if (nout != c->n) {
            qdl_reg *o = qdL_newreg(L, QDL_K_DM, nout, 1);
            qd_circuit_extract_dm(c, w->a, o->a);
            lua_remove(L, -2);
        }
        if (inplace)
            lua_pushnil(L);
        return;
    }
    qd_rng base;
    memset(&base, 0, sizeof base);
    if ((c->nmeas || c->nchan) && !fixed && rng)
        base = qd_rng_split(rng);
    qd_meas_ctl mc = {&base, oc, fixed, allow_zero, prob};
    st = qd_circuit_run_vec_at(c, th, w->a, w->count, &mc, sh, first, &e);
    if (st != QD_OK)
        raise_err(L, &e);
    if (nout != c->n) {
        qdl_reg *o = qdL_newreg_uninit(L, x->kind, nout, x->count);
        qd_circuit_extract_vec(c, w->a, w->count, o->a);
        lua_remove(L, -2);
    }
    if (inplace)
        lua_pushnil(L);
}

typedef struct qdl_tape qdl_tape;   /* c:forward's tape (below, with the gradients) */
static qdl_tape *newtape(lua_State *L, const qd_circuit *c, const qdl_reg *x, const double *th,
                         int circ_idx);
static void forward_into(lua_State *L, qd_circuit *c, qdl_tape *t, size_t *oc, int fixed,
                         qd_rng *rng, double *prob, uint64_t first);

/* options (rng=, outcomes=, first=) at arg; returns outcome buffer (sampled into or fixed) */
static const char *const run_opts[] = {"rng", "outcomes", "first", NULL};

/* option `first` (1-based, default 1): the global index of the input's first member when it
 * is a block of a larger ensemble (qd.mpi.scatter's second result). Member j then draws
 * from the substreams of member first + j - 1, so a run on the blocks gathered equals the
 * run on the whole. Returns the 0-based offset. */
static uint64_t opt_first(lua_State *L, int arg)
{
    if (lua_isnoneornil(L, arg))
        return 0;
    lua_getfield(L, arg, "first");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    lua_Integer f = lua_tointeger(L, -1);
    if (!lua_isinteger(L, -1) || f < 1)
        luaL_argerror(L, arg, "option 'first': member index >= 1 expected");
    lua_pop(L, 1);
    return (uint64_t)(f - 1);
}

/* mode 0: c:run, 1: c:apply (in place), 2: c:forward (output and tape) */
static int run_common(lua_State *L, int mode)
{
    const int inplace = mode == 1;
    qdl_circ *C = checkcirc(L, 1);
    qd_circuit *c = &C->c;
    qdL_checknargs(L, 4);
    lua_settop(L, 4);   /* missing arguments are nil; scratch goes above them */
    /* c:run(x, {rng = r}) on a circuit without parameters: a table with a non-integer key
     * in the parameter position, and nothing after it, is the options table */
    if (c->nslots == 0 && lua_istable(L, 3) && lua_isnil(L, 4) && !qdL_testarray(L, 3)) {
        int opts = 0;
        lua_pushnil(L);
        while (!opts && lua_next(L, 3)) {
            lua_pop(L, 1);
            opts = !lua_isinteger(L, -1);
        }
        if (opts) {
            lua_settop(L, 3);
            lua_pushnil(L);
            lua_insert(L, 3);   /* params = nil, options = the table */
        }
        lua_settop(L, 4);
    }
    qdl_reg *x = checkinput(L, 2, c);
    qdL_checkoptions(L, 4, run_opts);
    const uint64_t first = opt_first(L, 4);
    if (first && x->kind == QDL_K_DM)
        return luaL_argerror(L, 4, "option 'first': a DensityMatrix draws nothing (State or Ensemble blocks only)");
    double *th = checkparams(L, 3, c);
    if (inplace && qd_circuit_nout(c, NULL) != c->n)
        return luaL_error(L, "apply: the circuit discards qubits; use c:run (it returns a smaller object)");
    qd_rng *rng = NULL;
    size_t *oc = NULL;
    int fixed = 0;
    if ((c->nmeas || c->nchan) && x->kind != QDL_K_DM) {
        if (c->nmeas && !lua_isnoneornil(L, 4) && lua_getfield(L, 4, "outcomes") != LUA_TNIL) {
            oc = checkoutcomes(L, lua_gettop(L), "option 'outcomes'", c, x->count);
            fixed = 1;
        } else {
            if (!lua_isnoneornil(L, 4))
                lua_pop(L, 1);
            if (!lua_isnoneornil(L, 4) && lua_getfield(L, 4, "rng") != LUA_TNIL) {
                if (!luaL_testudata(L, -1, QDL_RNG))
                    return luaL_argerror(L, 4, "option 'rng': qd.Rng expected");
                rng = qdL_checkrng(L, lua_gettop(L));
            } else {
                rng = qdL_runrng(L);
            }
            if (c->nmeas)
                oc = lua_newuserdatauv(L, sizeof(size_t) * x->count * (size_t)c->nmeas, 0);
        }
    }
    double *prob = c->nmeas && x->kind != QDL_K_DM ? lua_newuserdatauv(L, sizeof(double) * x->count, 0) : NULL;
    if (mode == 2) {   /* the output, then the tape */
        if (c->ncondops)
            return luaL_error(L, "forward: no gradient through a conditional op (an OpenQASM 'if' on measured bits)");
        if (c->nchan && x->kind != QDL_K_DM)
            return luaL_error(L, "forward: no gradient through a channel on pure states (its Kraus operator is "
                                 "sampled): use a DensityMatrix input for gradients of noisy circuits");
        qdl_tape *t = newtape(L, c, x, th, 1);
        if (x->kind == QDL_K_DM)
            run_into(L, c, x, th, NULL, 0, 0, NULL, NULL, NULL, 0, 0);
        else
            forward_into(L, c, t, oc, fixed, rng, prob, first);
        lua_insert(L, -2);   /* output, tape */
    } else {
        run_into(L, c, x, th, oc, fixed, 0, rng, prob, NULL, inplace, first);
        if (inplace) {
            lua_pop(L, 1);
            lua_pushvalue(L, 2);
        }
    }
    const int nres = mode == 2 ? 2 : 1;
    if (!c->nmeas || x->kind == QDL_K_DM)
        return nres;
    push_outcomes(L, c, oc, x->count);
    if (x->kind == QDL_K_STATE) {
        lua_pushnumber(L, prob[0]);
    } else {
        qdl_array *pv = qdL_newarray(L, x->count, 1, 0, 1);
        memcpy(pv->data, prob, sizeof(double) * x->count);
    }
    return nres + 2;
}

/* c:run(x [, params] [, {rng=, outcomes=}]) -> output [, outcomes, probabilities] */
static int m_run(lua_State *L)
{
    return run_common(L, 0);
}

/* c:apply(x [, params] [, opts]) -> x (in place) [, outcomes, probabilities] */
static int m_apply(lua_State *L)
{
    return run_common(L, 1);
}

/* c:forward(x [, params] [, opts]) -> output, tape [, outcomes, probabilities] */
static int m_forward(lua_State *L)
{
    return run_common(L, 2);
}

/* c:unitary([params]) -> qd.Matrix 2^n x 2^n */
static int m_unitary(lua_State *L)
{
    qdl_circ *C = checkcirc(L, 1);
    qdL_checknargs(L, 2);
    lua_settop(L, 2);   /* missing arguments are nil; scratch goes above them */
    double *th = checkparams(L, 2, &C->c);
    if (C->c.nmeas || C->c.nchan)
        return luaL_error(L, "unitary: the circuit has measurements, resets or channels");
    if (C->c.n > 14)
        return luaL_error(L, "unitary: %d qubits is too many for a dense matrix (at most 14)", C->c.n);
    size_t d = (size_t)1 << C->c.n;
    qdl_array *U = qdL_newarray(L, d, d, 1, 0);
    qd_err e;
    if (qd_circuit_unitary(&C->c, th, U->data, &e) != QD_OK)
        return raise_err(L, &e);
    return 1;
}

/* ------------------------------------------------------------------ gradients */
/* G at arg shaped like the output of c on x: a register of the same kind, or a complex
 * qd.Vector/qd.Matrix of the right size. Returns its data (not copied). */
/* G at stack index idx; errors are reported as bad argument #arg (the argument that made
 * it: the gradient given, or the loss function whose result it is) */
static const qd_c *checkG(lua_State *L, int idx, int arg, const qd_circuit *c, const qdl_reg *x,
                          const char *what)
{
    int nout = qd_circuit_nout(c, NULL);
    size_t dout = (size_t)1 << nout;
    size_t rows = dout, cols = x->kind == QDL_K_DM ? dout : x->count;
    qdl_reg *g = NULL;
    for (int k = 0; k < 3 && !g; k++)
        g = qdL_testkind(L, idx, (qdl_kind)k);
    if (g) {
        if (!g->a)
            luaL_argerror(L, arg, lua_pushfstring(L, "%s: %s has been freed", what, qdL_kindname(g->kind)));
        int okkind = x->kind == QDL_K_DM ? g->kind == QDL_K_DM : g->kind != QDL_K_DM;
        if (!okkind || g->n != nout || g->count != (x->kind == QDL_K_DM ? 1 : x->count))
            luaL_argerror(L, arg, lua_pushfstring(L, "%s: %s of %d qubits%s expected (shaped like the output)", what,
                                                  x->kind == QDL_K_DM ? "qd.DensityMatrix" : qdL_kindname(x->kind), nout,
                                                  x->kind == QDL_K_ENS ? lua_pushfstring(L, " and %d members", (int)x->count) : ""));
        return g->a;
    }
    qdl_array *a = qdL_testarray(L, idx);
    if (a && !a->freed && a->rows * a->cols == rows * cols) {
        if (a->cplx)
            return a->data;
        /* a real array (L = Tr(O rho) with a real O: G = O/2): as complex, in scratch */
        qd_c *z = qdL_scratch(L, rows * cols, sizeof(qd_c), "the gradient G");
        for (size_t i = 0; i < rows * cols; i++)
            z[i] = ((const double *)a->data)[i];
        return z;
    }
    luaL_argerror(L, arg, lua_pushfstring(L, "%s: %s of %d qubits or a %dx%d array expected, got %s", what,
                                          qdL_kindname(x->kind), nout, (int)rows, (int)cols,
                                          a ? "an array of another size" : luaL_typename(L, idx)));
    return NULL;
}

/* per-member numbers at arg: number (count 1), qd.Vector or table of N */
static void checkmembers(lua_State *L, int arg, size_t N, double *out, const char *what)
{
    if (lua_type(L, arg) == LUA_TNUMBER && N == 1) {
        out[0] = lua_tonumber(L, arg);
        return;
    }
    qdl_array *a = qdL_testarray(L, arg);
    if (a && !a->cplx && a->rows * a->cols == N) {
        memcpy(out, a->data, sizeof(double) * N);
        return;
    }
    if (!a && lua_istable(L, arg) && (size_t)luaL_len(L, arg) == N) {
        for (size_t j = 0; j < N; j++) {
            lua_geti(L, arg, (lua_Integer)j + 1);
            if (lua_type(L, -1) != LUA_TNUMBER)
                luaL_argerror(L, arg, lua_pushfstring(L, "%s: number expected at position %d", what, (int)j + 1));
            out[j] = lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
        return;
    }
    luaL_argerror(L, arg, lua_pushfstring(L, "%s: %s expected", what,
                                          N == 1 ? "number" : lua_pushfstring(L, "qd.Vector or table of %d numbers", (int)N)));
}

/* vjp core: pushes grad (qd.Vector) and G_in (same kind as x) */
static void vjp_into(lua_State *L, qd_circuit *c, qdl_reg *x, const double *th, const qd_c *G,
                     const size_t *oc, const double *dLdP, int input_grad)
{
    qdl_array *gv = qdL_newarray(L, (size_t)(c->nslots ? c->nslots : 0), 1, 0, 1);
    double *gbuf = lua_newuserdatauv(L, sizeof(double) * (size_t)(c->nslots + 1), 0);
    qdl_reg *gin = input_grad ? qdL_newreg(L, x->kind, c->n, x->count) : NULL;
    qd_c *ga = gin ? gin->a : NULL;
    qd_err e;
    qd_status st = x->kind == QDL_K_DM ? qd_circuit_vjp_dm(c, th, x->a, G, gbuf, ga, &e)
                                        : qd_circuit_vjp_vec(c, th, x->a, x->count, oc, G, dLdP, gbuf, ga, NULL, &e);
    if (st != QD_OK)
        raise_err(L, &e);
    if (c->nslots)
        memcpy(gv->data, gbuf, sizeof(double) * (size_t)c->nslots);
    if (gin)
        lua_remove(L, -2);   /* gbuf */
    else
        lua_pop(L, 1);
}

static const char *const vjp_opts[] = {"outcomes", "dLdP", "input_grad", NULL};

/* c:vjp(x, params, G [, {outcomes=, dLdP=, input_grad=true}]) -> dL/dtheta (qd.Vector)
 * [, dL/d conj(x) (not with input_grad = false)] */
static int m_vjp(lua_State *L)
{
    qdl_circ *C = checkcirc(L, 1);
    qd_circuit *c = &C->c;
    qdL_checknargs(L, 5);
    lua_settop(L, 5);   /* missing arguments are nil; scratch goes above them */
    qdl_reg *x = checkinput(L, 2, c);
    double *th = checkparams(L, 3, c);
    const qd_c *G = checkG(L, 4, 4, c, x, "gradient G");
    qdL_checkoptions(L, 5, vjp_opts);
    size_t *oc = NULL;
    double *dLdP = NULL;
    if (x->kind != QDL_K_DM && c->nmeas) {
        if (lua_isnoneornil(L, 5) || lua_getfield(L, 5, "outcomes") == LUA_TNIL)
            return luaL_argerror(L, 5, "the circuit has measurements: option 'outcomes' (as returned by c:run) expected");
        oc = checkoutcomes(L, lua_gettop(L), "option 'outcomes'", c, x->count);
        if (lua_getfield(L, 5, "dLdP") != LUA_TNIL) {
            dLdP = lua_newuserdatauv(L, sizeof(double) * x->count, 0);
            checkmembers(L, lua_gettop(L) - 1, x->count, dLdP, "option 'dLdP'");
        }
    } else if (!lua_isnoneornil(L, 5)) {
        if (lua_getfield(L, 5, "dLdP") != LUA_TNIL)
            return luaL_argerror(L, 5, "option 'dLdP' needs a circuit with measurements and a State or Ensemble input");
        lua_pop(L, 1);
    }
    int input_grad = qdL_optbool(L, 5, "input_grad", 1);
    vjp_into(L, c, x, th, G, oc, dLdP, input_grad);
    return input_grad ? 2 : 1;
}

/* ------------------------------------------------------------------ tapes
 * out, tape = c:forward(x, params): the run of c:run, keeping what the backward pass needs
 * (the final state of all n qubits, the states before each measurement, the outcome
 * probabilities and outcomes; for a density matrix, the input), so tape:vjp(G) does not run
 * the circuit again. The tape holds the circuit (user value 1) and refuses it once it has
 * changed (ops added) or been freed. */
#define QDL_TAPE "qd.Tape"

struct qdl_tape {
    qdl_kind kind;
    int n, nslots, freed;
    size_t count, nops, nm, amps;
    qd_c *psi;    /* vectors: final state (all n qubits); density matrix: the input */
    qd_c *ck;     /* states before each measurement (nm x amps) */
    double *pm;   /* outcome probabilities, count * (nm + 2) (the tail is scratch) */
    size_t *oc;   /* outcomes, member-major */
    double *th;   /* parameters (nslots) */
    void *buf;
    size_t bytes;
};

static qdl_tape *checktape(lua_State *L, int idx)
{
    qdl_tape *t = luaL_checkudata(L, idx, QDL_TAPE);
    if (t->freed)
        luaL_argerror(L, idx, "the qd.Tape has been freed");
    return t;
}

/* a new tape (pushed) for c on x with parameters th: buffers allocated, th copied */
static qdl_tape *newtape(lua_State *L, const qd_circuit *c, const qdl_reg *x, const double *th,
                         int circ_idx)
{
    qdl_tape *t = lua_newuserdatauv(L, sizeof *t, 1);
    memset(t, 0, sizeof *t);
    t->freed = 1;   /* until the buffers exist */
    luaL_setmetatable(L, QDL_TAPE);
    lua_pushvalue(L, circ_idx);
    lua_setiuservalue(L, -2, 1);
    t->kind = x->kind;
    t->n = c->n;
    t->nslots = c->nslots;
    t->count = x->count;
    t->nops = c->nops;
    t->nm = x->kind == QDL_K_DM ? 0 : (size_t)c->nmeas;
    t->amps = x->bytes / sizeof(qd_c);   /* 4^n for a density matrix */
    size_t parts[5] = {x->bytes, 0, 0, 0, sizeof(double) * (size_t)(c->nslots + 1)}, tot = 0;
    if (qd_mul_overflow(x->bytes, t->nm, &parts[1]) ||
        qd_mul_overflow(sizeof(double) * t->count, t->nm + 2, &parts[2]) ||
        qd_mul_overflow(sizeof(size_t) * t->count, t->nm + 1, &parts[3]))
        luaL_error(L, "forward: the tape's buffers overflow");
    for (int i = 0; i < 5; i++) {
        parts[i] = (parts[i] + 63) & ~(size_t)63;
        if (tot > (size_t)-1 - parts[i])
            luaL_error(L, "forward: the tape's buffers overflow");
        tot += parts[i];
    }
    char *b = qdL_alloc(L, tot, 0, "the tape of c:forward");
    t->buf = b;
    t->bytes = tot;
    t->freed = 0;
    t->psi = (qd_c *)b;
    t->ck = (qd_c *)(b + parts[0]);
    t->pm = (double *)(b + parts[0] + parts[1]);
    t->oc = (size_t *)(b + parts[0] + parts[1] + parts[2]);
    t->th = (double *)(b + parts[0] + parts[1] + parts[2] + parts[3]);
    if (c->nslots)
        memcpy(t->th, th, sizeof(double) * (size_t)c->nslots);
    memcpy(t->psi, x->a, x->bytes);
    return t;
}

static int tape_gc(lua_State *L)
{
    qdl_tape *t = luaL_checkudata(L, 1, QDL_TAPE);
    if (!t->freed) {
        qdL_release(t->buf, t->bytes);
        t->buf = NULL;
        t->freed = 1;
    }
    return 0;
}

static int tape_tostring(lua_State *L)
{
    qdl_tape *t = luaL_checkudata(L, 1, QDL_TAPE);
    if (t->freed)
        lua_pushstring(L, "qd.Tape(freed)");
    else
        lua_pushfstring(L, "qd.Tape(%s of %d qubits%s, %d parameter%s)", qdL_kindname(t->kind), t->n,
                        t->kind == QDL_K_ENS ? lua_pushfstring(L, " x %d members", (int)t->count) : "",
                        t->nslots, t->nslots == 1 ? "" : "s");
    return 1;
}

static const char *const tape_vjp_opts[] = {"dLdP", "input_grad", NULL};

/* tape:vjp(G [, {dLdP=, input_grad=true}]) -> dL/dtheta (qd.Vector) [, dL/d conj(x)] */
static int tape_vjp(lua_State *L)
{
    qdl_tape *t = checktape(L, 1);
    qdL_checknargs(L, 3);
    lua_settop(L, 3);
    qdL_checkoptions(L, 3, tape_vjp_opts);
    lua_getiuservalue(L, 1, 1);   /* index 4: the circuit */
    qdl_circ *C = luaL_testudata(L, 4, QDL_CIRCUIT);
    if (!C || C->freed)
        return luaL_error(L, "vjp: the tape's circuit has been freed");
    qd_circuit *c = &C->c;
    if (c->nops != t->nops || c->nslots != t->nslots)
        return luaL_error(L, "vjp: the circuit has changed since c:forward made this tape (run c:forward again)");
    int input_grad = qdL_optbool(L, 3, "input_grad", 1);
    qdl_reg xs = {t->kind, t->n, t->count, t->psi, 0};
    const qd_c *G = checkG(L, 2, 2, c, &xs, "gradient G");
    double *dLdP = NULL;
    if (!lua_isnoneornil(L, 3) && lua_getfield(L, 3, "dLdP") != LUA_TNIL) {
        if (t->kind == QDL_K_DM || !t->nm)
            return luaL_argerror(L, 3, "option 'dLdP' needs a circuit with measurements and a State or Ensemble input");
        dLdP = lua_newuserdatauv(L, sizeof(double) * t->count, 0);
        checkmembers(L, lua_gettop(L) - 1, t->count, dLdP, "option 'dLdP'");
    }
    /* the backward pass uses its psi as scratch: a copy of the tape's (scratch first: it
     * sits below the results on the stack) */
    qd_c *w = t->kind == QDL_K_DM ? NULL : qdL_scratch(L, 2 * t->amps, sizeof(qd_c), "the backward pass");
    qdl_array *gv = qdL_newarray(L, (size_t)t->nslots, 1, 0, 1);
    double *gbuf = lua_newuserdatauv(L, sizeof(double) * (size_t)(t->nslots + 1), 0);
    qdl_reg *gin = input_grad ? qdL_newreg_uninit(L, t->kind, t->n, t->count) : NULL;
    qd_err e;
    qd_status st;
    if (t->kind == QDL_K_DM) {
        st = qd_circuit_vjp_dm(c, t->th, t->psi, G, gbuf, gin ? gin->a : NULL, &e);
    } else {
        memcpy(w, t->psi, sizeof(qd_c) * t->amps);
        st = qd_circuit_vjp_vec_tape(c, t->th, t->count, t->nm ? t->oc : NULL, G, dLdP, gbuf,
                                     gin ? gin->a : NULL, NULL, w, w + t->amps, t->nm ? t->ck : NULL,
                                     t->pm, &e);
    }
    if (st != QD_OK)
        return raise_err(L, &e);
    if (t->nslots)
        memcpy(gv->data, gbuf, sizeof(double) * (size_t)t->nslots);
    if (!gin) {
        lua_pop(L, 1);   /* gbuf */
        return 1;
    }
    lua_remove(L, -2);   /* gbuf */
    return 2;
}

/* the circuit a tape belongs to */
static int tape_circuit(lua_State *L)
{
    checktape(L, 1);
    lua_getiuservalue(L, 1, 1);
    return 1;
}

static void open_tape(lua_State *L)
{
    static const luaL_Reg methods[] = {{"vjp", tape_vjp}, {"circuit", tape_circuit}, {"free", tape_gc},
                                       {NULL, NULL}};
    static const luaL_Reg meta[] = {{"__gc", tape_gc}, {"__close", tape_gc}, {"__tostring", tape_tostring},
                                    {NULL, NULL}};
    qdL_newclass(L, QDL_TAPE, methods, NULL, meta);
    lua_pop(L, 1);
}

/* c:forward on a state or ensemble: the run into the tape t (psi holds x on entry); pushes
 * the output. As run_into otherwise (bitwise the same output). */
static void forward_into(lua_State *L, qd_circuit *c, qdl_tape *t, size_t *oc, int fixed,
                         qd_rng *rng, double *prob, uint64_t first)
{
    qd_rng base;
    memset(&base, 0, sizeof base);
    if (c->nmeas && !fixed && rng)
        base = qd_rng_split(rng);
    qd_meas_ctl mc = {&base, oc, fixed, 0, prob};
    qd_err e;
    if (qd_circuit_run_vec_tape_at(c, t->th, t->psi, t->count, &mc, t->nm ? t->ck : NULL, t->pm,
                                   first, &e) != QD_OK)
        raise_err(L, &e);
    if (t->nm)
        memcpy(t->oc, oc, sizeof(size_t) * t->count * t->nm);
    int nout = qd_circuit_nout(c, NULL);
    qdl_reg *o = qdL_newreg_uninit(L, t->kind, nout, t->count);
    if (nout != c->n)
        qd_circuit_extract_vec(c, t->psi, t->count, o->a);
    else
        memcpy(o->a, t->psi, sizeof(qd_c) * t->amps);
}

/* calls loss_fn (at fidx) with the value on top (consumed) plus extra args pushed before
 * the call by the caller (nextra values above the output); expects `nres` results */
static void call_loss(lua_State *L, int fidx, int nargs, int nres)
{
    lua_pushvalue(L, fidx);
    lua_insert(L, -(nargs + 1));
    lua_call(L, nargs, nres);
    /* the input (argument 2 of every gradient method) is read again after the call */
    qdl_reg *x = NULL;
    for (int k = 0; k < 3 && !x; k++)
        x = qdL_testkind(L, 2, (qdl_kind)k);
    if (x && !x->a)
        luaL_error(L, "the loss function freed the input %s", qdL_kindname(x->kind));
}

static double loss_number(lua_State *L, int idx, const char *what)
{
    if (lua_type(L, idx) != LUA_TNUMBER)
        luaL_error(L, "%s: the loss function must return a number first, got %s", what, luaL_typename(L, idx));
    double v = lua_tonumber(L, idx);
    return v;
}

static void check_unchanged(lua_State *L, const qd_circuit *c, size_t nops, int nslots, const char *what)
{
    if (c->nops != nops || c->nslots != nslots)
        luaL_error(L, "%s: the circuit was modified by the loss function", what);
}

static const char *const grad_opts[] = {"rng", "outcomes", "expected", "first", NULL};
/* c:grad_fd also takes the finite-difference step */
static const char *const grad_fd_opts[] = {"rng", "outcomes", "expected", "h", NULL};

/* total bits over measurement ops (for the expected-loss enumeration) */
static int meas_bits(const qd_circuit *c, int *bits)
{
    int tot = 0, mi = 0;
    for (size_t o = 0; o < c->nops; o++)
        if (c->ops[o].kind == QD_OP_MEASURE || c->ops[o].kind == QD_OP_RESET) {
            bits[mi++] = c->ops[o].k;
            tot += c->ops[o].k;
        }
    return tot;
}

/* Expected-loss mode: E = sum_m sum_j P_jm l_j(psi'_jm), every joint outcome m of the
 * measurement ops (same m for all members per call). loss_fn(out_m, P_m, m) returns l
 * (number for a State, qd.Vector/table of N numbers for an Ensemble) and G = dL_m/d conj(out)
 * with L_m = sum_j l_j. If grad != NULL, accumulates dE/dtheta. Returns E. */
static double expected_mode(lua_State *L, qd_circuit *c, qdl_reg *x, const double *th,
                            int fidx, double *grad, const qd_shift *sh)
{
    int bits[64];
    int B = meas_bits(c, bits);
    if (B > 12)
        luaL_error(L, "expected mode: %d measured bits is too many outcome branches (at most 12 bits)", B);
    size_t M = (size_t)1 << B, N = x->count, nm = (size_t)c->nmeas;
    int nout = qd_circuit_nout(c, NULL);
    size_t dout = (size_t)1 << nout;
    size_t *oc = lua_newuserdatauv(L, sizeof(size_t) * N * (nm ? nm : 1), 0);
    double *P = lua_newuserdatauv(L, sizeof(double) * N, 0);
    double *ell = lua_newuserdatauv(L, sizeof(double) * N, 0);
    double *g1 = lua_newuserdatauv(L, sizeof(double) * (size_t)(c->nslots + 1), 0);
    qd_c *Gs = lua_newuserdatauv(L, sizeof(qd_c) * dout * N, 0);
    int top = lua_gettop(L);
    size_t nops = c->nops;
    int nslots = c->nslots;
    double E = 0;
    if (grad)
        for (int s = 0; s < c->nslots; s++)
            grad[s] = 0;
    for (size_t m = 0; m < M; m++) {
        /* split m into per-measurement outcomes, first measurement most significant */
        int shift = B;
        for (size_t i = 0; i < nm; i++) {
            shift -= bits[i];
            size_t v = (m >> shift) & (((size_t)1 << bits[i]) - 1);
            for (size_t j = 0; j < N; j++)
                oc[j * nm + i] = v;
        }
        run_into(L, c, x, th, oc, 1, 1, NULL, P, sh, 0, 0);   /* out on top */
        if (x->kind == QDL_K_STATE) {
            lua_pushnumber(L, P[0]);
        } else {
            qdl_array *pv = qdL_newarray(L, N, 1, 0, 1);
            memcpy(pv->data, P, sizeof(double) * N);
        }
        lua_pushinteger(L, (lua_Integer)m);
        call_loss(L, fidx, 3, 2);
        check_unchanged(L, c, nops, nslots, "grad (expected mode)");
        checkmembers(L, top + 1, N, ell, "expected-mode loss (first result)");
        for (size_t j = 0; j < N; j++)
            E += P[j] * ell[j];
        if (grad) {
            const qd_c *G = checkG(L, top + 2, 4, c, x, "expected-mode loss (second result)");
            for (size_t j = 0; j < N; j++)
                for (size_t i = 0; i < dout; i++)
                    Gs[j * dout + i] = P[j] * G[j * dout + i];
            qd_err e;
            if (qd_circuit_vjp_vec(c, th, x->a, N, oc, Gs, ell, g1, NULL, NULL, &e) != QD_OK)
                raise_err(L, &e);
            for (int s = 0; s < c->nslots; s++)
                grad[s] += g1[s];
        }
        lua_settop(L, top);
    }
    lua_pop(L, 5);
    return E;
}

/* c:grad on a State/Ensemble (not expected mode): one forward run that records the tape
 * (checkpoints before measurements, outcome probabilities), the loss, then the backward
 * pass from that run (qd_circuit_vjp_vec_tape) instead of a second forward. Same results
 * as run + vjp. Pushes L, grad, output [, outcomes]. */
static int grad_vec(lua_State *L, qd_circuit *c, qdl_reg *x, const double *th, size_t *oc,
                    int fixed, qd_rng *rng, size_t nops, int nslots, uint64_t first)
{
    const size_t count = x->count, nm = (size_t)c->nmeas;
    const size_t amps = ((size_t)1 << c->n) * count;
    size_t nb, bytes;
    if (qd_mul_overflow(amps, sizeof(qd_c) * (2 + nm), &nb) ||
        qd_mul_overflow(count, sizeof(double) * (nm + 2), &bytes) || nb > (size_t)-1 - bytes)
        return luaL_error(L, "grad: gradient buffers too large");
    qd_c *psi = lua_newuserdatauv(L, nb + bytes, 0);   /* scratch: psi, lam, ck, pm */
    qd_c *lam = psi + amps, *ck = lam + amps;
    double *pm = (double *)(ck + amps * nm);
    memcpy(psi, x->a, x->bytes);
    qd_rng base;
    memset(&base, 0, sizeof base);
    if (nm && !fixed)
        base = qd_rng_split(rng);
    qd_meas_ctl mc = {&base, oc, fixed, 0, NULL};
    qd_err e;
    if (qd_circuit_run_vec_tape_at(c, th, psi, count, &mc, nm ? ck : NULL, pm, first, &e) != QD_OK)
        return raise_err(L, &e);
    int nout = qd_circuit_nout(c, NULL);
    qdl_reg *o = qdL_newreg(L, x->kind, nout, count);
    if (nout != c->n)
        qd_circuit_extract_vec(c, psi, count, o->a);
    else
        memcpy(o->a, psi, sizeof(qd_c) * amps);
    int out_idx = lua_gettop(L);
    lua_pushvalue(L, out_idx);
    call_loss(L, 4, 1, 2);
    check_unchanged(L, c, nops, nslots, "grad");
    double Lv = loss_number(L, out_idx + 1, "grad");
    const qd_c *G = checkG(L, out_idx + 2, 4, c, x, "the loss function's second result");
    qdl_array *gv = qdL_newarray(L, (size_t)nslots, 1, 0, 1);
    double dummy;
    if (qd_circuit_vjp_vec_tape(c, th, count, oc, G, NULL, nslots ? gv->data : &dummy, NULL, NULL,
                                psi, lam, nm ? ck : NULL, pm, &e) != QD_OK)
        return raise_err(L, &e);
    lua_pushnumber(L, Lv);
    lua_insert(L, -2);   /* L, grad */
    lua_pushvalue(L, out_idx);
    if (nm) {
        push_outcomes(L, c, oc, count);
        return 4;
    }
    return 3;
}

/* c:grad(x, params, loss_fn [, {rng=, outcomes=, expected=false}])
 *   -> L, dL/dtheta (qd.Vector), output [, outcomes]
 * loss_fn(out) returns L, G (G = dL/d conj(out), shaped like out). expected=true: the exact
 * expected loss over all measurement outcomes (see expected_mode) -> E, dE/dtheta. */
static int m_grad(lua_State *L)
{
    qdl_circ *C = checkcirc(L, 1);
    qd_circuit *c = &C->c;
    qdL_checknargs(L, 5);
    lua_settop(L, 5);   /* missing arguments are nil; scratch goes above them */
    qdl_reg *x = checkinput(L, 2, c);
    double *th = checkparams(L, 3, c);   /* pushed: index 6 */
    luaL_checktype(L, 4, LUA_TFUNCTION);
    qdL_checkoptions(L, 5, grad_opts);
    int expected = qdL_optbool(L, 5, "expected", 0);
    const uint64_t first = opt_first(L, 5);
    if (first && (expected || x->kind == QDL_K_DM))
        return luaL_argerror(L, 5, "option 'first': only for sampled runs of State or Ensemble blocks (not with "
                                   "expected = true or a DensityMatrix)");
    size_t nops = c->nops;
    int nslots = c->nslots;
    if (expected) {
        if (x->kind == QDL_K_DM)
            return luaL_argerror(L, 5, "expected mode is for State/Ensemble inputs (a DensityMatrix run already averages over outcomes)");
        if (!c->nmeas)
            return luaL_argerror(L, 5, "expected mode needs a circuit with measurements");
        qdl_array *gv = qdL_newarray(L, (size_t)c->nslots, 1, 0, 1);
        int gidx = lua_gettop(L);
        double *g = lua_newuserdatauv(L, sizeof(double) * (size_t)(c->nslots + 1), 0);
        double E = expected_mode(L, c, x, th, 4, g, NULL);
        if (c->nslots)   /* no parameters: gv has no buffer */
            memcpy(gv->data, g, sizeof(double) * (size_t)c->nslots);
        lua_pushnumber(L, E);
        lua_pushvalue(L, gidx);
        return 2;
    }
    size_t *oc = NULL;
    int fixed = 0;
    qd_rng *rng = NULL;
    if (c->nmeas && x->kind != QDL_K_DM) {
        if (!lua_isnoneornil(L, 5) && lua_getfield(L, 5, "outcomes") != LUA_TNIL) {
            oc = checkoutcomes(L, lua_gettop(L), "option 'outcomes'", c, x->count);
            fixed = 1;
        } else {
            if (!lua_isnoneornil(L, 5)) {
                lua_pop(L, 1);
                if (lua_getfield(L, 5, "rng") != LUA_TNIL) {
                    if (!luaL_testudata(L, -1, QDL_RNG))
                        return luaL_argerror(L, 5, "option 'rng': qd.Rng expected");
                    rng = qdL_checkrng(L, lua_gettop(L));
                } else {
                    rng = qdL_runrng(L);
                }
            } else {
                rng = qdL_runrng(L);
            }
            oc = lua_newuserdatauv(L, sizeof(size_t) * x->count * (size_t)c->nmeas, 0);
        }
    }
    if (x->kind != QDL_K_DM)
        return grad_vec(L, c, x, th, oc, fixed, rng, nops, nslots, first);
    run_into(L, c, x, th, oc, fixed, 0, rng, NULL, NULL, 0, 0);
    int out_idx = lua_gettop(L);
    lua_pushvalue(L, out_idx);
    call_loss(L, 4, 1, 2);
    check_unchanged(L, c, nops, nslots, "grad");
    double Lv = loss_number(L, out_idx + 1, "grad");
    const qd_c *G = checkG(L, out_idx + 2, 4, c, x, "the loss function's second result");
    vjp_into(L, c, x, th, G, oc, NULL, 0);
    lua_pushnumber(L, Lv);
    lua_insert(L, -2);   /* L, grad */
    lua_pushvalue(L, out_idx);
    if (c->nmeas && x->kind != QDL_K_DM) {
        push_outcomes(L, c, oc, x->count);
        return 4;
    }
    return 3;
}

/* loss value of a run with shift sh (outcomes fixed if any) */
static double shifted_loss(lua_State *L, qd_circuit *c, qdl_reg *x, const double *th, size_t *oc,
                           int fidx, const qd_shift *sh, int expected, const char *what)
{
    size_t nops = c->nops;
    int nslots = c->nslots;
    if (expected)
        return expected_mode(L, c, x, th, fidx, NULL, sh);
    int top = lua_gettop(L);
    run_into(L, c, x, th, oc, 1, 0, NULL, NULL, sh, 0, 0);
    call_loss(L, fidx, 1, 1);
    check_unchanged(L, c, nops, nslots, what);
    double v = loss_number(L, -1, what);
    lua_settop(L, top);
    return v;
}

/* c:grad_ps(x, params, loss_fn) -> L, dL/dtheta by parameter-shift rules (each occurrence
 * of a slot shifted on its own; two terms, four for controlled rotations). Exact when the
 * loss is linear in each output density matrix (expectation values, fidelities to fixed
 * states and sums of these); a cross-check, 2-4 runs per angle occurrence. */
static int m_grad_ps(lua_State *L)
{
    qdl_circ *C = checkcirc(L, 1);
    qd_circuit *c = &C->c;
    qdL_checknargs(L, 4);
    lua_settop(L, 4);   /* missing arguments are nil; scratch goes above them */
    qdl_reg *x = checkinput(L, 2, c);
    double *th = checkparams(L, 3, c);
    luaL_checktype(L, 4, LUA_TFUNCTION);
    if (c->nmeas && x->kind != QDL_K_DM)
        return luaL_error(L, "grad_ps: the circuit measures a pure state (the normalised "
                             "post-measurement state is not linear in the gates); use vjp/grad or grad_fd");
    qdl_array *gv = qdL_newarray(L, (size_t)c->nslots, 1, 0, 1);
    double *g = gv->data;
    const double dp = (sqrt(2) + 1) / (4 * sqrt(2)), dm = (sqrt(2) - 1) / (4 * sqrt(2));
    double L0 = shifted_loss(L, c, x, th, NULL, 4, NULL, 0, "grad_ps");
    for (size_t o = 0; o < c->nops; o++) {
        const qd_op *op = &c->ops[o];
        if (op->kind != QD_OP_GATE)
            continue;
        for (int i = 0; i < op->g->nparams; i++) {
            if (op->slot[i] < 0 || op->scale[i] == 0)
                continue;
            qd_shift a = {o, i, M_PI / 2}, b = {o, i, -M_PI / 2};
            double der = shifted_loss(L, c, x, th, NULL, 4, &a, 0, "grad_ps") -
                         shifted_loss(L, c, x, th, NULL, 4, &b, 0, "grad_ps");
            if (qd_gate_ps_fourterm(op->g, i)) {
                qd_shift a3 = {o, i, 1.5 * M_PI}, b3 = {o, i, -1.5 * M_PI};
                der = dp * der - dm * (shifted_loss(L, c, x, th, NULL, 4, &a3, 0, "grad_ps") -
                                       shifted_loss(L, c, x, th, NULL, 4, &b3, 0, "grad_ps"));
            } else {
                der *= 0.5;
            }
            g[op->slot[i]] += op->scale[i] * der;
        }
    }
    lua_pushnumber(L, L0);
    lua_insert(L, -2);
    return 2;
}

/* c:grad_fd(x, params, loss_fn [, {h=1e-6, outcomes=, rng=, expected=}]) -> L, gradient by
 * central differences; measurement outcomes held fixed (given, or sampled once). */
static int m_grad_fd(lua_State *L)
{
    qdl_circ *C = checkcirc(L, 1);
    qd_circuit *c = &C->c;
    qdL_checknargs(L, 5);
    lua_settop(L, 5);   /* missing arguments are nil; scratch goes above them */
    qdl_reg *x = checkinput(L, 2, c);
    double *th = checkparams(L, 3, c);
    luaL_checktype(L, 4, LUA_TFUNCTION);
    qdL_checkoptions(L, 5, grad_fd_opts);
    int expected = qdL_optbool(L, 5, "expected", 0);
    if (expected && (x->kind == QDL_K_DM || !c->nmeas))
        return luaL_argerror(L, 5, "expected mode needs a State/Ensemble input and a circuit with measurements");
    double h = 1e-6;
    if (!lua_isnoneornil(L, 5)) {
        h = qdL_optnum(L, 5, "h", 1e-6, -INFINITY, INFINITY, 0);
        if (!(h > 0))
            return luaL_argerror(L, 5, "option 'h': positive step expected");
    }
    size_t *oc = NULL;
    if (c->nmeas && x->kind != QDL_K_DM && !expected) {
        if (!lua_isnoneornil(L, 5) && lua_getfield(L, 5, "outcomes") != LUA_TNIL) {
            oc = checkoutcomes(L, lua_gettop(L), "option 'outcomes'", c, x->count);
        } else {
            qd_rng *rng;
            if (!lua_isnoneornil(L, 5)) {
                lua_pop(L, 1);
                if (lua_getfield(L, 5, "rng") != LUA_TNIL) {
                    if (!luaL_testudata(L, -1, QDL_RNG))
                        return luaL_argerror(L, 5, "option 'rng': qd.Rng expected");
                    rng = qdL_checkrng(L, lua_gettop(L));
                } else {
                    rng = qdL_runrng(L);
                }
            } else {
                rng = qdL_runrng(L);
            }
            oc = lua_newuserdatauv(L, sizeof(size_t) * x->count * (size_t)c->nmeas, 0);
            run_into(L, c, x, th, oc, 0, 0, rng, NULL, NULL, 0, 0);
            lua_pop(L, 1);
        }
    }
    qdl_array *gv = qdL_newarray(L, (size_t)c->nslots, 1, 0, 1);
    double *g = gv->data;
    double L0 = shifted_loss(L, c, x, th, oc, 4, NULL, expected, "grad_fd");
    for (int s = 0; s < c->nslots; s++) {
        double t0 = th[s];
        th[s] = t0 + h;
        double fp = shifted_loss(L, c, x, th, oc, 4, NULL, expected, "grad_fd");
        th[s] = t0 - h;
        double fm = shifted_loss(L, c, x, th, oc, 4, NULL, expected, "grad_fd");
        th[s] = t0;
        g[s] = (fp - fm) / (2 * h);
    }
    lua_pushnumber(L, L0);
    lua_insert(L, -2);
    return 2;
}

/* ------------------------------------------------------------------ metamethods */
/* __gc, __close and c:free(): the op list released once; afterwards every use is an error */
static int circ_gc(lua_State *L)
{
    qdl_circ *C = luaL_checkudata(L, 1, QDL_CIRCUIT);
    if (!C->freed) {
        qd_circuit_free(&C->c);
        C->freed = 1;
    }
    return 0;
}

static int circ_index(lua_State *L)
{
    qdl_circ *C = checkcirc(L, 1);
    if (lua_type(L, 2) == LUA_TSTRING) {
        const char *k = lua_tostring(L, 2);
        if (strcmp(k, "n") == 0) {
            lua_pushinteger(L, C->c.n);
            return 1;
        }
        if (strcmp(k, "nout") == 0) {
            lua_pushinteger(L, qd_circuit_nout(&C->c, NULL));
            return 1;
        }
        if (strcmp(k, "nmeas") == 0) {
            lua_pushinteger(L, C->c.nmeas);
            return 1;
        }
    }
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1));
    if (lua_isnil(L, -1) && lua_type(L, 2) == LUA_TSTRING)
        qdL_method_alias(L, lua_upvalueindex(1), lua_tostring(L, 2));
    return 1;
}

static int circ_len(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)checkcirc(L, 1)->c.nops);
    return 1;
}

static int circ_tostring(lua_State *L)
{
    qdl_circ *C = checkcirc(L, 1);
    int nout = qd_circuit_nout(&C->c, NULL);
    lua_pushfstring(L, "qd.Circuit(%d qubit%s, %d op%s, %d parameter%s%s)", C->c.n, C->c.n == 1 ? "" : "s",
                    (int)C->c.nops, C->c.nops == 1 ? "" : "s", C->c.nslots, C->c.nslots == 1 ? "" : "s",
                    nout != C->c.n ? lua_pushfstring(L, ", %d output qubit%s", nout, nout == 1 ? "" : "s") : "");
    return 1;
}

void qdL_open_circuit(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"add_unitary", m_add_unitary}, {"measure", m_measure}, {"reset", m_reset}, {"channel", m_channel},
        {"nparams", m_nparams}, {"param", m_param}, {"param_index", m_param_index},
        {"param_names", m_param_names}, {"ops", m_ops}, {"copy", m_copy},
        {"inverse", m_inverse}, {"append", m_append}, {"run", m_run}, {"apply", m_apply},
        {"forward", m_forward},
        {"unitary", m_unitary}, {"vjp", m_vjp}, {"grad", m_grad}, {"grad_ps", m_grad_ps},
        {"grad_fd", m_grad_fd}, {"free", circ_gc}, {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__gc", circ_gc}, {"__close", circ_gc}, {"__len", circ_len},
        {"__tostring", circ_tostring}, {NULL, NULL}};
    qdL_newclass(L, QDL_CIRCUIT, methods, circ_index, meta);
    size_t ng;   /* a method per gate, from the registry */
    const qd_gate_info *g = qd_gate_list(&ng);
    for (size_t i = 0; i < ng; i++) {
        lua_pushlightuserdata(L, (void *)&g[i]);
        lua_pushcclosure(L, gate_method, 1);
        lua_setfield(L, -2, g[i].name);
    }
    lua_pop(L, 1);
    static const luaL_Reg fns[] = {{"circuit", l_circuit}, {"circuit_call", l_circuit_call}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
    open_tape(L);
    qdL_open_qasm(L);
}
