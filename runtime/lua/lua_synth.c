/* lua_synth.c — the C half of qd.tokens and qd.synth (stdlib/qd/tokens.lua, synth.lua):
 * genQC token tensors decoded with reasons, batches of token circuits evaluated in C
 * (validity, gate counts, Schmidt-rank vectors, unitaries, infidelities, canonical keys),
 * Schmidt-rank vectors of states, unitary distances, and token .npy files in genQC's shape
 * (B, n, G). Core: runtime/core/synth.c (qd_synth.h). A batch is a real qd.Matrix of
 * n*G rows, one circuit per column (entry (q, t) of circuit b at row q + n*t + 1). */
#include "lua_util.h"
#include "lua_sys.h"
#include "qd_synth.h"
#include <math.h>
#include <string.h>
#include <stdarg.h>

/* luaL_argerror with a formatted message */
static int argf(lua_State *L, int arg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const char *msg = lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    return luaL_argerror(L, arg, msg);
}

/* the vocabulary at arg: a table of 1 ... QD_TOK_MAXV gate names; returns V */
static int check_vocab(lua_State *L, int arg, qd_tok_gate *voc)
{
    if (!lua_istable(L, arg))
        return argf(L, arg, "vocabulary (table of gate names) expected, "
                    "got %s", luaL_typename(L, arg));
    lua_Integer V = qdL_checklen(L, arg, arg, QD_TOK_MAXV, "vocabulary");
    if (V < 1)
        return luaL_argerror(L, arg, "vocabulary: at least one gate name expected");
    for (lua_Integer i = 1; i <= V; i++) {
        if (lua_geti(L, arg, i) != LUA_TSTRING)
            return argf(L, arg, "vocabulary: gate name expected at [%d], "
                        "got %s", (int)i, luaL_typename(L, -1));
        qd_err e;
        if (qd_tok_role(lua_tostring(L, -1), &voc[i - 1], &e) != QD_OK)
            return argf(L, arg, "vocabulary: %s", e.msg);
        for (lua_Integer j = 1; j < i; j++)
            if (voc[j - 1].g == voc[i - 1].g)
                return argf(L, arg, "vocabulary: gate '%s' listed twice",
                            voc[i - 1].g->name);
        lua_pop(L, 1);
    }
    return (int)V;
}

/* a real qd.Matrix at arg (optionally with `rows` rows; 0 = any) */
static qdl_array *check_real(lua_State *L, int arg, size_t rows, const char *what)
{
    qdl_array *A = qdL_testarray(L, arg);
    if (!A || A->freed || A->cplx)
        argf(L, arg, "real qd.Matrix (%s) expected, got %s", what,
             A ? (A->freed ? "a freed array" : "a complex array")
             : luaL_typename(L, arg));
    if (rows && A->rows != rows)
        argf(L, arg, "%s with %d rows expected, got %d", what, (int)rows,
             (int)A->rows);
    return A;
}

/* core.synth.decode(T, P|nil, vocab) -> {{name=, qubits={...}, params={...}, t=}, ...} | nil, why
 * T: n x G real matrix, P: P x G real matrix (angles in [-1, 1] for (x + 1) * 2 pi) */
static int l_decode(lua_State *L)
{
    qdL_checknargs(L, 3);
    qdl_array *T = check_real(L, 1, 0, "token tensor, qubits x time");
    qdl_array *P = lua_isnoneornil(L, 2) ? NULL : check_real(L, 2, 0, "parameter tensor");
    qd_tok_gate voc[QD_TOK_MAXV];
    int V = check_vocab(L, 3, voc);
    if (T->rows < 1 || T->rows > QD_TOK_MAXN || T->cols < 1 || T->cols > QD_TOK_MAXG)
        return argf(L, 1, "1 ... %d qubits and 1 ... %d time steps expected, "
                    "got %d x %d", QD_TOK_MAXN, QD_TOK_MAXG,
                    (int)T->rows, (int)T->cols);
    if (P && P->cols != T->cols)
        return argf(L, 2, "parameter tensor with %d columns expected, got %d",
                    (int)T->cols, (int)P->cols);
    qd_tok_op *ops = lua_newuserdatauv(L, sizeof(qd_tok_op) * T->cols, 0);
    char why[200];
    int n = (int)T->rows;
    int nops = qd_tok_decode(T->data, n, (int)T->cols, voc, V, ops, why, sizeof why);
    if (nops < 0) {
        lua_pushnil(L);
        lua_pushstring(L, why);
        return 2;
    }
    qd_tok_batch b = {n, (int)T->cols, V, P ? (int)P->rows : 0, voc, T->data,
                      P ? P->data : NULL, 1};
    lua_createtable(L, nops, 0);
    for (int k = 0; k < nops; k++) {
        const qd_gate_info *g = voc[ops[k].v - 1].g;
        lua_createtable(L, 0, 4);
        lua_pushstring(L, g->name);
        lua_setfield(L, -2, "name");
        lua_pushinteger(L, ops[k].t + 1);
        lua_setfield(L, -2, "t");
        lua_createtable(L, ops[k].nq, 0);
        for (int i = 0; i < ops[k].nq; i++) {
            lua_pushinteger(L, ops[k].q[i]);
            lua_rawseti(L, -2, i + 1);
        }
        lua_setfield(L, -2, "qubits");
        lua_createtable(L, g->nparams, 0);
        for (int j = 0; j < g->nparams; j++) {
            double x = j < b.P ? ((const double *)P->data)[(size_t)b.P * ops[k].t + j] : -1.0;
            lua_pushnumber(L, (x + 1.0) * 2.0 * M_PI);
            lua_rawseti(L, -2, j + 1);
        }
        lua_setfield(L, -2, "params");
        lua_rawseti(L, -2, k + 1);
    }
    return 1;
}

/* pushes a real qd.Vector of B entries from ints/bytes */
static void push_counts(lua_State *L, const void *src, size_t B, int bytes)
{
    qdl_array *v = qdL_newarray(L, B, 1, 0, 1);
    double *d = v->data;
    for (size_t i = 0; i < B; i++)
        d[i] = bytes ? ((const unsigned char *)src)[i] : ((const int *)src)[i];
}

/* the targets option of eval: a d x d matrix (one target) or a complex d*d x B matrix */
static const qd_c *eval_targets(lua_State *L, int opt, size_t d, size_t B, size_t *nt)
{
    int ty = lua_getfield(L, opt, "target");
    if (ty == LUA_TNIL) {
        lua_pop(L, 1);
        return NULL;
    }
    int idx = lua_gettop(L);   /* stays on the stack: the buffers below live as long */
    qdl_array *A = qdL_testarray(L, idx);
    if (A && !A->freed && A->rows == d * d && A->cols == B && B > 0 && A->rows != A->cols) {
        qd_c *m = lua_newuserdatauv(L, sizeof(qd_c) * d * d * B, 0);
        for (size_t i = 0; i < d * d * B; i++)
            m[i] = qdL_array_get(A, i);
        *nt = B;
        return m;
    }
    qd_c *m;
    size_t dd = qdL_checkcmatrix(L, idx, &m);
    if (dd != d)
        argf(L, opt, "option 'target': %dx%d unitary (or a %d x B matrix of "
             "them) expected, got %dx%d", (int)d, (int)d, (int)(d * d),
             (int)dd, (int)dd);
    *nt = 1;
    return m;
}

static void push_keys(lua_State *L, const qd_tok_batch *b, const qd_c *U, size_t d)
{
    size_t cap = U ? 8 * d * d : QD_TOK_KEYCAP(b->G);
    unsigned char *key = lua_newuserdatauv(L, cap, 0);
    qd_tok_op *ops = lua_newuserdatauv(L, sizeof(qd_tok_op) * (size_t)b->G, 0);
    lua_createtable(L, (int)(b->B < 1u << 30 ? b->B : 0), 0);
    for (size_t i = 0; i < b->B; i++) {
        size_t len = U ? (isnan(creal(U[i * d * d])) ? 0 : qd_unitary_key(U + i * d * d, d, key))
                       : qd_tok_key(b, i, ops, key, cap);
        if (len)
            lua_pushlstring(L, (const char *)key, len);
        else
            lua_pushboolean(L, 0);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_replace(L, -3);
    lua_pop(L, 1);
}

/* core.synth.eval(T, n, vocab [, {params=, tol=, srv=, target=, unitaries=, keys=}]) -> table
 *   keys = "ops" (canonical op lists) | "unitary" (unitary up to global phase) */
static int l_eval(lua_State *L)
{
    qdL_checknargs(L, 4);
    qdl_array *T = check_real(L, 1, 0, "token batch, n*G x B");
    lua_Integer n = luaL_checkinteger(L, 2);
    if (n < 1 || n > QD_TOK_MAXN)
        return argf(L, 2, "qubits 1 ... %d expected, got %d", QD_TOK_MAXN, (int)n);
    qd_tok_gate voc[QD_TOK_MAXV];
    int V = check_vocab(L, 3, voc);
    static const char *const allowed[] = {"params", "tol", "srv", "target", "unitaries", "keys",
                                          NULL};
    qdL_checkoptions(L, 4, allowed);
    int hasopt = lua_istable(L, 4);
    if (T->rows % (size_t)n || T->rows / (size_t)n > QD_TOK_MAXG || T->rows == 0)
        return argf(L, 1, "rows a multiple n*G of n = %d (G <= %d) expected, "
                    "got %d", (int)n, QD_TOK_MAXG, (int)T->rows);
    int G = (int)(T->rows / (size_t)n);
    size_t B = T->cols;
    qd_tok_batch b = {(int)n, G, V, 0, voc, T->data, NULL, B};
    if (hasopt && lua_getfield(L, 4, "params") != LUA_TNIL) {
        qdl_array *P = check_real(L, -1, 0, "option 'params'");
        if (P->cols != B || P->rows % (size_t)G || P->rows / (size_t)G > 3)
            return argf(L, 4, "option 'params': P*%d x %d matrix (P <= 3) "
                        "expected, got %d x %d", G, (int)B,
                        (int)P->rows, (int)P->cols);
        b.P = (int)(P->rows / (size_t)G);
        b.params = P->data;
    }
    if (hasopt)
        lua_pop(L, 1);
    double tol = qdL_optnum(L, 4, "tol", 1e-8, 0, 1, 0);
    int want_srv = qdL_optbool(L, 4, "srv", 1), want_u = qdL_optbool(L, 4, "unitaries", 0);
    int keys = 0;
    if (hasopt && lua_getfield(L, 4, "keys") != LUA_TNIL) {
        const char *k = lua_tostring(L, -1);
        if (lua_type(L, -1) != LUA_TSTRING || (strcmp(k, "ops") && strcmp(k, "unitary")))
            return luaL_argerror(L, 4, "option 'keys': \"ops\" or \"unitary\" expected");
        keys = strcmp(k, "ops") == 0 ? 1 : 2;
    }
    if (hasopt)
        lua_pop(L, 1);
    size_t d = (size_t)1 << n, nt = 0;
    const qd_c *targets = hasopt ? eval_targets(L, 4, d, B, &nt) : NULL;
    if ((targets || want_u || keys == 2) && n > QD_TOK_MAXU)
        return argf(L, 2, "unitaries need at most %d qubits, got %d",
                    QD_TOK_MAXU, (int)n);
    lua_createtable(L, 0, 8);
    int tab = lua_gettop(L);
    unsigned char *valid = lua_newuserdatauv(L, B ? B : 1, 0);
    int *ngates = lua_newuserdatauv(L, sizeof(int) * (B ? B : 1), 0);
    unsigned char *srv = want_srv ? lua_newuserdatauv(L, (size_t)n * B + 1, 0) : NULL;
    qdl_array *S = NULL, *Ai = NULL, *Ad = NULL, *U = NULL;
    if (want_srv) {
        S = qdL_newarray(L, (size_t)n, B, 0, 0);
        lua_setfield(L, tab, "srv");
    }
    if (targets) {
        Ai = qdL_newarray(L, B, 1, 0, 1);
        lua_setfield(L, tab, "infidelity");
        Ad = qdL_newarray(L, B, 1, 0, 1);
        lua_setfield(L, tab, "distance");
    }
    if (want_u || keys == 2) {
        U = qdL_newarray(L, d * d, B, 1, 0);
        if (want_u)
            lua_setfield(L, tab, "unitaries");
    }
    qd_tok_out o = {valid, ngates, srv, tol, targets, nt, Ai ? Ai->data : NULL,
                    Ad ? Ad->data : NULL,
                    U ? U->data : NULL};
    qd_err e;
    if (qd_tok_eval(&b, &o, &e) != QD_OK)
        return qdL_raise(L, &e);
    push_counts(L, valid, B, 1);
    lua_setfield(L, tab, "valid");
    push_counts(L, ngates, B, 0);
    lua_setfield(L, tab, "gates");
    if (S)
        for (size_t i = 0; i < (size_t)n * B; i++)
            ((double *)S->data)[i] = srv[i];
    if (keys) {
        push_keys(L, &b, keys == 2 ? U->data : NULL, d);
        lua_setfield(L, tab, "keys");
    }
    lua_pushvalue(L, tab);
    return 1;
}

/* core.synth.srv(state | ensemble [, tol]) -> table of n ranks, table of n smallest eigenvalues
 * (State); n x N qd.Matrix of ranks (Ensemble) */
static int l_srv(lua_State *L)
{
    qdL_checknargs(L, 2);
    qdl_reg *r = qdL_checkreg(L, 1);
    if (r->kind == QDL_K_DM)
        return luaL_argerror(L, 1, "qd.State or qd.Ensemble expected, got qd.DensityMatrix");
    double tol = luaL_optnumber(L, 2, 1e-8);
    if (!(tol >= 0 && tol < 1))
        return luaL_argerror(L, 2, "tolerance in [0, 1) expected");
    unsigned char srv[QD_MAX_QUBITS];
    double ev[QD_MAX_QUBITS];
    size_t d = (size_t)1 << r->n;
    if (r->kind == QDL_K_STATE) {
        qd_srv_state(r->a, r->n, tol, srv, ev);
        lua_createtable(L, r->n, 0);
        lua_createtable(L, r->n, 0);
        for (int q = 0; q < r->n; q++) {
            lua_pushinteger(L, srv[q]);
            lua_rawseti(L, -3, q + 1);
            lua_pushnumber(L, ev[q]);
            lua_rawseti(L, -2, q + 1);
        }
        return 2;
    }
    qdl_array *M = qdL_newarray(L, (size_t)r->n, r->count, 0, 0);
    for (size_t k = 0; k < r->count; k++) {
        qd_srv_state(r->a + k * d, r->n, tol, srv, NULL);
        for (int q = 0; q < r->n; q++)
            ((double *)M->data)[k * (size_t)r->n + q] = srv[q];
    }
    return 1;
}

static int unitary_pair(lua_State *L, double (*f)(const qd_c *, const qd_c *, size_t))
{
    qdL_checknargs(L, 2);
    qd_c *U, *V;
    size_t d = qdL_checkcmatrix(L, 1, &U);
    size_t d2 = qdL_checkcmatrix(L, 2, &V);
    if (d != d2)
        return argf(L, 2, "%dx%d matrix expected, got %dx%d", (int)d, (int)d,
                    (int)d2, (int)d2);
    lua_pushnumber(L, f(U, V, d));
    return 1;
}
static int l_infidelity(lua_State *L) { return unitary_pair(L, qd_unitary_infidelity); }
static int l_distance(lua_State *L) { return unitary_pair(L, qd_unitary_distance); }

static int npy_gc(lua_State *L)
{
    qd_npy *f = lua_touserdata(L, 1);
    qd_free(f->data);
    f->data = NULL;
    return 0;
}

/* core.synth.load_tokens(path) -> M (n*G x B), n, G | nil, msg: a (B, n, G) or (n, G) .npy */
static int l_load_tokens(lua_State *L)
{
    qdL_checknargs(L, 1);
    const char *path = luaL_checkstring(L, 1);
    qdL_check_path(L, path, 0);
    qd_npy *f = lua_newuserdatauv(L, sizeof *f, 0);   /* owns the file's buffer (__gc) */
    memset(f, 0, sizeof *f);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, npy_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    qd_err e;
    if (qd_npy_read(path, f, &e) != QD_OK) {
        lua_pushnil(L);
        lua_pushstring(L, e.msg);
        return 2;
    }
    if (f->is_complex || (f->ndim != 2 && f->ndim != 3) || f->count == 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: a real (B, n, G) or (n, G) array expected", path);
        return 2;
    }
    size_t B = f->ndim == 3 ? f->shape[0] : 1, n = f->shape[f->ndim - 2], G = f->shape[f->ndim - 1];
    qdl_array *M = qdL_newarray(L, n * G, B, 0, 0);
    double *dst = M->data;
    const double *src = f->data;
    for (size_t b = 0; b < B; b++)
        for (size_t q = 0; q < n; q++)
            for (size_t t = 0; t < G; t++)
                dst[b * n * G + t * n + q] = src[b * n * G + q * G + t];
    lua_pushinteger(L, (lua_Integer)n);
    lua_pushinteger(L, (lua_Integer)G);
    return 3;
}

/* core.synth.save_tokens(path, M, n): M (n*G x B) written as a (B, n, G) float64 .npy */
static int l_save_tokens(lua_State *L)
{
    qdL_checknargs(L, 3);
    const char *path = luaL_checkstring(L, 1);
    qdl_array *M = check_real(L, 2, 0, "token batch, n*G x B");
    lua_Integer n = luaL_checkinteger(L, 3);
    if (n < 1 || M->rows % (size_t)n)
        return argf(L, 3, "a divisor of the batch's %d rows expected, got %d",
                    (int)M->rows, (int)n);
    qdL_check_path(L, path, 1);
    size_t G = M->rows / (size_t)n, B = M->cols;
    double *out = lua_newuserdatauv(L, sizeof(double) * (M->rows * B > 0 ? M->rows * B : 1), 0);
    const double *src = M->data;
    for (size_t b = 0; b < B; b++)
        for (size_t q = 0; q < (size_t)n; q++)
            for (size_t t = 0; t < G; t++)
                out[b * n * G + q * G + t] = src[b * n * G + t * n + q];
    size_t shape[3] = {B, (size_t)n, G};
    qd_err e;
    if (qd_npy_write(path, out, 0, 3, shape, 0, &e) != QD_OK)
        return qdL_raise(L, &e);
    return 0;
}

/* core.synth.random(n, G, vocab, B [, rng] [, {min_gates = 1, max_gates = G, pad = true}])
 * -> tokens (n*G x B), params (P*G x B, P the vocabulary's most angles) | nil */
static int l_random(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1), G = luaL_checkinteger(L, 2);
    qd_tok_gate voc[QD_TOK_MAXV];
    int V = check_vocab(L, 3, voc), maxq = 0, P = 0;
    lua_Integer B = luaL_checkinteger(L, 4);
    int optidx;
    qd_rng *rng = qdL_rng_opts(L, 5, &optidx);
    static const char *const allowed[] = {"min_gates", "max_gates", "pad", NULL};
    qdL_checkoptions(L, optidx, allowed);
    for (int v = 0; v < V; v++) {
        if (voc[v].g->nqubits > maxq)
            maxq = voc[v].g->nqubits;
        if (voc[v].g->nparams > P)
            P = voc[v].g->nparams;
    }
    if (n < maxq || n > QD_TOK_MAXN)
        return argf(L, 1, "qubits %d ... %d expected (the vocabulary's gates), "
                    "got %d", maxq, QD_TOK_MAXN, (int)n);
    if (G < 1 || G > QD_TOK_MAXG)
        return argf(L, 2, "time steps 1 ... %d expected, got %d", QD_TOK_MAXG,
                    (int)G);
    if (B < 1 || B > ((lua_Integer)1 << 40))
        return luaL_argerror(L, 4, "a count >= 1 expected");
    int gmin = (int)qdL_optnum(L, optidx, "min_gates", 1, 0, (double)G, 0);
    int gmax = (int)qdL_optnum(L, optidx, "max_gates", (double)G, 0, (double)G, 0);
    if (gmin > gmax)
        return argf(L, optidx, "option 'min_gates' (%d) exceeds 'max_gates' "
                    "(%d)", gmin, gmax);
    int pad = qdL_optbool(L, optidx, "pad", 1);
    qd_rng base = qd_rng_split(rng);
    qdl_array *T = qdL_newarray(L, (size_t)(n * G), (size_t)B, 0, 0);
    qdl_array *A = P ? qdL_newarray(L, (size_t)P * (size_t)G, (size_t)B, 0, 0) : NULL;
    qd_tok_random(voc, V, (int)n, (int)G, (size_t)B, &base, gmin, gmax, pad, T->data, P,
                  A ? A->data : NULL);
    if (!A)
        lua_pushnil(L);
    return 2;
}

/* core.synth.role(name) -> controls, targets, angles | nil, msg */
static int l_role(lua_State *L)
{
    qdL_checknargs(L, 1);
    qd_tok_gate g;
    qd_err e;
    if (qd_tok_role(luaL_checkstring(L, 1), &g, &e) != QD_OK) {
        lua_pushnil(L);
        lua_pushstring(L, e.msg);
        return 2;
    }
    lua_pushinteger(L, g.nctrl);
    lua_pushinteger(L, g.ntgt);
    lua_pushinteger(L, g.g->nparams);
    return 3;
}

/* the embedding table at arg: a real de x K matrix */
static qdl_array *check_emb(lua_State *L, int arg)
{
    qdl_array *E = check_real(L, arg, 0, "embedding, dim x tokens");
    if (E->rows < 1 || E->cols < 1 || E->cols > 4096)
        luaL_argerror(L, arg, "embedding with 1 ... 4096 tokens expected");
    return E;
}

/* the smallest token value (argument arg) */
static lua_Integer check_vmin(lua_State *L, int arg)
{
    lua_Integer vmin = luaL_checkinteger(L, arg);
    if (vmin < -100000 || vmin > 100000)
        luaL_argerror(L, arg, "smallest token in -100000 ... 100000 expected");
    return vmin;
}

/* core.synth.embed(T (cells x B), E (de x K), vmin) -> X (cells*de x B) */
static int l_embed(lua_State *L)
{
    qdL_checknargs(L, 3);
    qdl_array *T = check_real(L, 1, 0, "token batch");
    qdl_array *E = check_emb(L, 2);
    lua_Integer vmin = check_vmin(L, 3);
    size_t rows;
    if (qd_mul_overflow(T->rows, E->rows, &rows))
        return luaL_argerror(L, 1, "batch too large");
    qdl_array *X = qdL_newarray(L, rows, T->cols, 0, 0);
    qd_err e;
    if (qd_tok_embed(T->data, T->rows, T->cols, E->data, (int)E->rows, (int)E->cols, (int)vmin,
                     X->data,
                     &e) != QD_OK)
        return luaL_argerror(L, 1, e.msg);
    return 1;
}

/* core.synth.nearest(X (cells*de x B), E (de x K), vmin) -> T (cells x B) */
static int l_nearest(lua_State *L)
{
    qdL_checknargs(L, 3);
    qdl_array *X = check_real(L, 1, 0, "embedded batch");
    qdl_array *E = check_emb(L, 2);
    lua_Integer vmin = check_vmin(L, 3);
    if (X->rows % E->rows)
        return argf(L, 1, "rows a multiple of the embedding dimension %d "
                    "expected, got %d", (int)E->rows, (int)X->rows);
    qdl_array *T = qdL_newarray(L, X->rows / E->rows, X->cols, 0, 0);
    qd_tok_nearest(X->data, T->rows, X->cols, E->data, (int)E->rows, (int)E->cols, (int)vmin,
                   T->data);
    return 1;
}

static const double *check_coef(lua_State *L, int arg, size_t B)
{
    qdl_array *v = check_real(L, arg, B, "coefficients, one per column");
    if (v->cols != 1)
        luaL_argerror(L, arg, "a qd.Vector expected");
    return v->data;
}

/* core.synth.diffuse(X0 (D x B), a, s (qd.Vector of B) [, rng]) -> a X0 + s eps, eps */
static int l_diffuse(lua_State *L)
{
    qdL_checknargs(L, 4);
    qdl_array *X = check_real(L, 1, 0, "clean batch");
    const double *a = check_coef(L, 2, X->cols), *s = check_coef(L, 3, X->cols);
    qd_rng base = qd_rng_split(qdL_optrng(L, 4));
    qdl_array *Xt = qdL_newarray(L, X->rows, X->cols, 0, 0);
    qdl_array *Ep = qdL_newarray(L, X->rows, X->cols, 0, 0);
    qd_diffuse(X->data, X->rows, X->cols, a, s, &base, Xt->data, Ep->data);
    return 2;
}

void qdL_open_synth(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"decode", l_decode}, {"eval", l_eval}, {"srv", l_srv}, {"infidelity", l_infidelity},
        {"distance", l_distance}, {"load_tokens", l_load_tokens}, {"save_tokens", l_save_tokens},
        {"random", l_random}, {"role", l_role}, {"embed", l_embed}, {"nearest", l_nearest},
        {"diffuse", l_diffuse},
        {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_setfield(L, -2, "synth");
}
