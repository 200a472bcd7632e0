/* lua_mpi.c — qd.core.mpi: ranks, collectives and distributed state vectors (qd.DistState)
 * over runtime/core/dist*.c. The same functions exist in the build without MPI, for one
 * rank (rank 0 of 1, collectives return their argument), so a script runs either way.
 * Lua values travel as strings (stdlib/qd/mpi.lua serialises them); this file moves bytes,
 * numbers and arrays. Reductions are in rank order (qd_dist.h): the bits are the library's
 * choice of nothing. */
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lua_sys.h"
#include "lua_util.h"
#include "qd_dist.h"
#include "qd_loss.h"
#include "qd_circuit.h"

#define QDL_DSTATE "qd.DistState"

static void check_rank_arg(lua_State *L, int arg, int allow_any)
{
    lua_Integer r = luaL_checkinteger(L, arg);
    if (r < (allow_any ? -1 : 0) || r >= qd_dist_size())
        luaL_argerror(L, arg, lua_pushfstring(L, "rank %s0..%d expected, got %I",
                                              allow_any ? "-1 (any) or " : "",
                                              qd_dist_size() - 1, r));
}

static int l_barrier(lua_State *L)
{
    qdL_checknargs(L, 0);
    qd_err e;
    if (qd_dist_barrier(&e))
        return qdL_raise(L, &e);
    return 0;
}

/* bcast_bytes(s | nil, root) -> s on every rank */
static int l_bcast_bytes(lua_State *L)
{
    qdL_checknargs(L, 2);
    check_rank_arg(L, 2, 0);
    int root = (int)lua_tointeger(L, 2);
    size_t len = 0;
    const char *s = NULL;
    if (qd_dist_rank() == root)
        s = luaL_checklstring(L, 1, &len);
    unsigned long long n = len;
    qd_err e;
    if (qd_dist_bcast(&n, sizeof n, root, &e))
        return qdL_raise(L, &e);
    char *b = qdL_scratch(L, n ? (size_t)n : 1, 1, "a broadcast");
    if (s)
        memcpy(b, s, len);
    if (qd_dist_bcast(b, (size_t)n, root, &e))
        return qdL_raise(L, &e);
    lua_pushlstring(L, b, (size_t)n);
    return 1;
}

/* gather_bytes(s, root) -> {s_0, ..., s_{P-1}} on root, nil elsewhere */
static int l_gather_bytes(lua_State *L)
{
    qdL_checknargs(L, 2);
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    check_rank_arg(L, 2, 0);
    int root = (int)lua_tointeger(L, 2), P = qd_dist_size();
    size_t *lens = qdL_scratch(L, (size_t)P, sizeof *lens, "a gather");
    void *all = NULL;
    qd_err e;
    if (qd_dist_gather(s, len, root, &all, lens, &e))
        return qdL_raise(L, &e);
    if (!all) {
        lua_pushnil(L);
        return 1;
    }
    /* into a collected buffer first: a memory error below must not leak `all` */
    size_t total = 0;
    for (int r = 0; r < P; r++)
        total += lens[r];
    char *keep = malloc(total ? total : 1);
    if (keep)
        memcpy(keep, all, total);
    free(all);
    if (!keep)
        return luaL_error(L, "not enough memory for a gather");
    char *kept = lua_newuserdatauv(L, total ? total : 1, 0);
    memcpy(kept, keep, total);
    free(keep);
    lua_createtable(L, P, 0);
    size_t pos = 0;
    for (int r = 0; r < P; r++) {
        lua_pushlstring(L, kept + pos, lens[r]);
        lua_rawseti(L, -2, r + 1);
        pos += lens[r];
    }
    return 1;
}

static int l_send_bytes(lua_State *L)
{
    qdL_checknargs(L, 3);
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    check_rank_arg(L, 2, 0);
    lua_Integer tag = luaL_checkinteger(L, 3);
    luaL_argcheck(L, tag >= 0 && tag <= 32767, 3, "tag 0..32767 expected");
    qd_err e;
    if (qd_dist_send(s, len, (int)lua_tointeger(L, 2), (int)tag, &e))
        return qdL_raise(L, &e);
    return 0;
}

/* recv_bytes(src, tag) -> s, src, tag (src, tag -1: any) */
static int l_recv_bytes(lua_State *L)
{
    qdL_checknargs(L, 2);
    check_rank_arg(L, 1, 1);
    lua_Integer tag = luaL_checkinteger(L, 2);
    luaL_argcheck(L, tag >= -1 && tag <= 32767, 2, "tag -1 (any) or 0..32767 expected");
    void *b;
    size_t len;
    int src, tg;
    qd_err e;
    if (qd_dist_recv((int)lua_tointeger(L, 1), (int)tag, &b, &len, &src, &tg, &e))
        return qdL_raise(L, &e);
    luaL_Buffer lb;   /* through a Lua buffer: nothing leaks if Lua runs out of memory */
    char *d = luaL_buffinitsize(L, &lb, len);
    memcpy(d, b, len);
    free(b);
    luaL_pushresultsize(&lb, len);
    lua_pushinteger(L, src);
    lua_pushinteger(L, tg);
    return 3;
}

static int l_iprobe(lua_State *L)
{
    qdL_checknargs(L, 2);
    check_rank_arg(L, 1, 1);
    lua_Integer tag = luaL_checkinteger(L, 2);
    luaL_argcheck(L, tag >= -1 && tag <= 32767, 2, "tag -1 (any) or 0..32767 expected");
    lua_pushboolean(L, qd_dist_iprobe((int)lua_tointeger(L, 1), (int)tag));
    return 1;
}

static char reduce_op(lua_State *L, int arg)
{
    static const char *const names[] = {"sum", "max", "min", "prod", NULL};
    static const char codes[] = {'s', 'M', 'm', 'p'};
    return codes[luaL_checkoption(L, arg, "sum", names)];
}

/* allreduce(x [, op]): x a number, a table of numbers, a qd.Vector or a qd.Matrix; the same
 * shape on every rank (checked: a mismatch is an error on every rank, not a hang) */
static int l_allreduce(lua_State *L)
{
    qdL_checknargs(L, 2);
    char op = reduce_op(L, 2);
    qd_err e;
    if (lua_type(L, 1) == LUA_TNUMBER) {
        double shape[2] = {-1, 1}, x = lua_tonumber(L, 1);
        if (qd_dist_allreduce(shape, 2, 'M', &e) || qd_dist_allreduce(&x, 1, op, &e))
            return qdL_raise(L, &e);
        lua_pushnumber(L, x);
        return 1;
    }
    qdl_array *a = lua_istable(L, 1) ? NULL : qdL_testarray(L, 1);
    if (!a && !lua_istable(L, 1))
        return luaL_typeerror(L, 1, "number, table of numbers, qd.Vector or qd.Matrix");
    size_t n, rows, cols;
    int cplx = 0;
    if (a) {
        rows = a->rows;
        cols = a->cols;
        cplx = a->cplx;
        n = rows * cols * (cplx ? 2 : 1);
        if (cplx && op != 's')
            return luaL_argerror(L, 2, "only 'sum' for a complex array");
    } else {
        n = rows = (size_t)qdL_checklen(L, 1, 1, (lua_Integer)1 << 40, "numbers");
        cols = 1;
    }
    /* shape check: max of (kind, rows, cols) and of their negatives */
    double kind = a ? (a->cols == 1 && luaL_testudata(L, 1, QDL_VECTOR) ? 1 : 2) + 2 * cplx : 0;
    double sh[6] = {kind, (double)rows, (double)cols, -kind, -(double)rows, -(double)cols};
    if (qd_dist_allreduce(sh, 6, 'M', &e))
        return qdL_raise(L, &e);
    if (sh[0] != -sh[3] || sh[1] != -sh[4] || sh[2] != -sh[5])
        return luaL_argerror(L, 1, "the same kind and shape on every rank expected");
    double *x = qdL_scratch(L, n ? n : 1, sizeof(double), "a reduction");
    if (a) {
        memcpy(x, a->data, n * sizeof(double));
    } else {
        for (size_t i = 0; i < n; i++) {
            if (lua_rawgeti(L, 1, (lua_Integer)i + 1) != LUA_TNUMBER)
                return luaL_argerror(L, 1, lua_pushfstring(L, "entry %I: number expected",
                                                           (lua_Integer)i + 1));
            x[i] = lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
    }
    if (qd_dist_allreduce(x, n, op, &e))
        return qdL_raise(L, &e);
    if (a) {
        qdl_array *b = qdL_newarray(L, rows, cols, cplx, luaL_testudata(L, 1, QDL_VECTOR) != NULL);
        memcpy(b->data, x, n * sizeof(double));
    } else {
        lua_createtable(L, (int)n, 0);
        for (size_t i = 0; i < n; i++) {
            lua_pushnumber(L, x[i]);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
    }
    return 1;
}

/* array_pack(a) -> bytes: header (kind, rows, cols, cplx) then the data, for mpi.lua */
static int l_array_pack(lua_State *L)
{
    qdL_checknargs(L, 1);
    qdl_array *a = qdL_checkarray(L, 1);
    unsigned long long h[4] = {luaL_testudata(L, 1, QDL_VECTOR) ? 1 : 2, a->rows, a->cols,
                               (unsigned long long)a->cplx};
    size_t n = a->rows * a->cols * (a->cplx ? sizeof(qd_c) : sizeof(double));
    luaL_Buffer b;
    char *d = luaL_buffinitsize(L, &b, sizeof h + n);
    memcpy(d, h, sizeof h);
    if (n)
        memcpy(d + sizeof h, a->data, n);
    luaL_pushresultsize(&b, sizeof h + n);
    return 1;
}

static int l_array_unpack(lua_State *L)
{
    qdL_checknargs(L, 1);
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    unsigned long long h[4];
    if (len < sizeof h)
        return luaL_argerror(L, 1, "packed array expected (too short)");
    memcpy(h, s, sizeof h);
    size_t esz = h[3] ? sizeof(qd_c) : sizeof(double), n;
    if (h[0] < 1 || h[0] > 2 || h[3] > 1 || (h[0] == 1 && h[2] != 1) ||
        qd_mul_overflow((size_t)h[1], (size_t)h[2], &n) || qd_mul_overflow(n, esz, &n) ||
        n != len - sizeof h)
        return luaL_argerror(L, 1, "packed array expected (bad header or length)");
    qdl_array *a = qdL_newarray(L, (size_t)h[1], (size_t)h[2], (int)h[3], h[0] == 1);
    memcpy(a->data, s + sizeof h, n);
    return 1;
}

/* ens_pack(E [, first, count]) -> bytes: header (n, count) then members first..first+count-1
 * (1-based; default all) — one copy of the block, for mpi.lua's scatter and allgather */
static int l_ens_pack(lua_State *L)
{
    qdL_checknargs(L, 3);
    qdl_reg *E = qdL_checkkind(L, 1, QDL_K_ENS);
    lua_Integer first = luaL_optinteger(L, 2, 1);
    lua_Integer count = luaL_optinteger(L, 3, (lua_Integer)E->count - first + 1);
    luaL_argcheck(L, first >= 1 && first <= (lua_Integer)E->count, 2, "member 1..#E expected");
    luaL_argcheck(L, count >= 0 && count <= (lua_Integer)E->count - first + 1, 3,
                  "member count within the ensemble expected");
    size_t D = (size_t)1 << E->n, bytes = (size_t)count * D * sizeof(qd_c);
    unsigned long long h[2] = {(unsigned long long)E->n, (unsigned long long)count};
    luaL_Buffer b;   /* sized once: one allocation, one copy */
    char *d = luaL_buffinitsize(L, &b, sizeof h + bytes);
    memcpy(d, h, sizeof h);
    memcpy(d + sizeof h, E->a + (size_t)(first - 1) * D, bytes);
    luaL_pushresultsize(&b, sizeof h + bytes);
    return 1;
}

/* ens_unpack({bytes, ...}) -> one qd.Ensemble of every part's members, in order */
static int l_ens_unpack(lua_State *L)
{
    qdL_checknargs(L, 1);
    lua_Integer np = qdL_checklen(L, 1, 1, 1 << 24, "packed ensembles");
    size_t total = 0;
    int n = -1;
    for (lua_Integer i = 1; i <= np; i++) {
        size_t len;
        unsigned long long h[2];
        lua_rawgeti(L, 1, i);
        const char *s = lua_tolstring(L, -1, &len);
        if (!s || len < sizeof h)
            return luaL_argerror(L, 1, "packed ensembles expected");
        memcpy(h, s, sizeof h);
        if (h[0] < 1 || h[0] > 40 || (n >= 0 && (int)h[0] != n) ||
            h[1] > (len - sizeof h) / (((size_t)1 << h[0]) * sizeof(qd_c)) ||
            len - sizeof h != h[1] * ((size_t)1 << h[0]) * sizeof(qd_c))
            return luaL_argerror(L, 1, "packed ensembles of one qubit count expected");
        n = (int)h[0];
        total += (size_t)h[1];
        lua_pop(L, 1);
    }
    if (total == 0)
        return luaL_argerror(L, 1, "at least one member expected");
    qdl_reg *E = qdL_newreg_uninit(L, QDL_K_ENS, n, total);
    size_t pos = 0, D = (size_t)1 << n;
    for (lua_Integer i = 1; i <= np; i++) {
        size_t len;
        lua_rawgeti(L, 1, i);
        const char *s = lua_tolstring(L, -1, &len);
        size_t bytes = len - 2 * sizeof(unsigned long long);
        memcpy(E->a + pos * D, s + 2 * sizeof(unsigned long long), bytes);
        pos += bytes / (D * sizeof(qd_c));
        lua_pop(L, 1);
    }
    return 1;
}

/* ens_allgather(part | nil) -> the qd.Ensemble of every rank's block, in rank order, on every
 * rank: the blocks' shapes first (every rank checks the same list), then the amplitudes in
 * one MPI_Allgatherv. A rank that raises here ends the job (the interpreter aborts on error),
 * so no rank is left waiting in the second collective. */
static int l_ens_allgather(lua_State *L)
{
    qdL_checknargs(L, 1);
    qdl_reg *E = lua_isnil(L, 1) ? NULL : qdL_checkkind(L, 1, QDL_K_ENS);
    int P = qd_dist_size(), n = 0;
    unsigned long long h[2] = {E ? (unsigned long long)E->n : 0, E ? E->count : 0};
    size_t *lens = qdL_scratch(L, (size_t)P, sizeof *lens, "an allgather");
    void *all = NULL;
    qd_err e;
    if (qd_dist_allgather(h, sizeof h, &all, lens, &e))
        return qdL_raise(L, &e);
    size_t total = 0;
    int bad = 0;
    for (int r = 0; r < P; r++) {
        const unsigned long long *hr = (const unsigned long long *)all + 2 * r;
        if (hr[1] == 0)
            continue;
        if (n && (int)hr[0] != n)
            bad = 1;
        n = (int)hr[0];
        total += (size_t)hr[1];
    }
    free(all);
    if (bad)
        return luaL_argerror(L, 1, "blocks of one qubit count on every rank expected");
    if (total == 0)
        return luaL_error(L, "allgather_ensemble: no rank holds a member");
    qdl_reg *F = qdL_newreg_uninit(L, QDL_K_ENS, n, total);
    size_t D = (size_t)1 << n;
    if (qd_dist_allgather(E ? E->a : NULL, E ? E->count * D * sizeof(qd_c) : 0, &all, lens, &e))
        return qdL_raise(L, &e);
    memcpy(F->a, all, total * D * sizeof(qd_c));
    free(all);
    return 1;
}

/* ---------------------------------------------------------------- losses over blocks
 * An ensemble spread over the ranks in blocks (qd.mpi.scatter): each rank passes its block
 * (nil when it holds no member); the results are the one-process results on the whole
 * ensemble, bit for bit (runtime/core/dist.c). Collectives: every rank calls them. */

/* the block at idx (a qd.Ensemble or nil) and every rank's block sizes, the sizes in
 * memory Lua owns (nothing to free if a later step raises) */
static qdl_reg *check_block(lua_State *L, int idx, qd_dist_blocks *b)
{
    qdl_reg *E = lua_isnoneornil(L, idx) ? NULL : qdL_testkind(L, idx, QDL_K_ENS);
    if (!E && !lua_isnoneornil(L, idx))
        luaL_typeerror(L, idx, "qd.Ensemble or nil (a rank without members)");
    if (E && !E->a)
        luaL_argerror(L, idx, "qd.Ensemble has been freed");
    size_t *keep = qdL_scratch(L, (size_t)qd_dist_size(), sizeof(size_t), "the blocks' sizes");
    qd_err e;
    if (qd_dist_block_info(E ? E->n : 0, E ? E->count : 0, b, &e))
        qdL_raise(L, &e);
    memcpy(keep, b->counts, (size_t)qd_dist_size() * sizeof(size_t));
    qd_dist_blocks_free(b);
    b->counts = keep;
    if (b->total == 0)
        luaL_argerror(L, idx, "no rank holds a member");
    return E;
}

/* overlaps(A [, B]) -> #A x #B_whole qd.Matrix of |<a_i|b_j>|^2 for this rank's rows (nil
 * on a rank without A members); B omitted: B = A. The B blocks go round the ring. */
static int l_overlaps(lua_State *L)
{
    qdL_checknargs(L, 2);
    int self = lua_gettop(L) < 2;
    lua_settop(L, 2);
    qd_dist_blocks ba, bb;
    qdl_reg *A = check_block(L, 1, &ba), *B = self ? A : check_block(L, 2, &bb);
    if (self)
        bb = ba;
    if (ba.nq != bb.nq)
        return luaL_argerror(L, 2, lua_pushfstring(L, "members of %d qubits (as A's) expected, "
                                                   "got %d", ba.nq, bb.nq));
    size_t N = A ? A->count : 0;
    double *out = NULL;
    if (N) {
        qdl_array *m = qdL_newarray(L, N, bb.total, 0, 0);
        out = m->data;
    } else {
        lua_pushnil(L);
    }
    qd_err e;
    if (qd_dist_overlaps(A ? A->a : NULL, N, B ? B->a : NULL, &bb, bb.nq, out, &e))
        return qdL_raise(L, &e);
    return 1;
}

/* mmd(A, B [, {grad=, method=}]) -> value [, G_A, G_B] (the gradients of this rank's
 * members; nil for a rank without members), as qd.loss.mmd on the whole ensembles */
static int l_mmd(lua_State *L)
{
    static const char *const opts[] = {"grad", "method", NULL};
    qdL_checknargs(L, 3);
    lua_settop(L, 3);
    qdL_checkoptions(L, 3, opts);
    int grad = qdL_optbool(L, 3, "grad", 0), method = QD_MMD_AUTO;
    if (!lua_isnil(L, 3) && lua_getfield(L, 3, "method") != LUA_TNIL) {
        static const char *const names[] = {"auto", "gram", "dm", NULL};
        static const int codes[] = {QD_MMD_AUTO, QD_MMD_GRAM, QD_MMD_DM};
        const char *m = lua_tostring(L, -1);
        int k = 0;
        while (m && names[k] && strcmp(names[k], m) != 0)
            k++;
        if (!m || !names[k])
            return luaL_argerror(L, 3, "option 'method': \"auto\", \"gram\" or \"dm\" expected");
        method = codes[k];
        lua_pop(L, 1);
    }
    qd_dist_blocks ba, bb;
    qdl_reg *A = check_block(L, 1, &ba), *B = check_block(L, 2, &bb);
    if (ba.nq != bb.nq)
        return luaL_argerror(L, 2, lua_pushfstring(L, "members of %d qubits (as A's) expected, "
                                                   "got %d", ba.nq, bb.nq));
    qd_c *GA = NULL, *GB = NULL;
    int ga = 0, gb = 0;
    if (grad) {
        if (A) {
            GA = qdL_newreg(L, QDL_K_ENS, A->n, A->count)->a;
            ga = lua_gettop(L);
        }
        if (B) {
            GB = qdL_newreg(L, QDL_K_ENS, B->n, B->count)->a;
            gb = lua_gettop(L);
        }
    }
    double v;
    int sharded;
    qd_err e;
    if (qd_dist_mmd_fid(A ? A->a : NULL, &ba, B ? B->a : NULL, &bb, ba.nq, method, &v, GA, GB,
                        &sharded, &e))
        return qdL_raise(L, &e);
    lua_pushnumber(L, v);
    if (!grad)
        return 1;
    if (ga)
        lua_pushvalue(L, ga);
    else
        lua_pushnil(L);
    if (gb)
        lua_pushvalue(L, gb);
    else
        lua_pushnil(L);
    lua_pushboolean(L, sharded);
    return 4;
}

/* grad(c, X, params, loss_fn [, {rng=}]) -> L, dL/dtheta, output [, outcomes]: c:grad on an
 * ensemble in blocks. X is this rank's block (at least one member on every rank); the run
 * draws member j's outcomes from the substream of its global index; loss_fn(out_block)
 * returns L (the same on every rank, e.g. qd.mpi.mmd's) and G for the block's members;
 * the backward pass runs on the block and its per-member terms are added over all members
 * in the one-process order (qd_dist_grad_terms): L, dL/dtheta and the output are the bits
 * of c:grad on the whole ensemble. */
static int l_grad(lua_State *L)
{
    static const char *const opts[] = {"rng", NULL};
    qdL_checknargs(L, 5);
    lua_settop(L, 5);
    qd_circuit *c = qdL_checkcircuit(L, 1);
    qdl_reg *X = qdL_checkkind(L, 2, QDL_K_ENS);
    if (X->n != c->n)
        return luaL_argerror(L, 2, lua_pushfstring(L, "members of %d qubits (the circuit's) "
                                                   "expected, got %d", c->n, X->n));
    int ns = c->nslots;
    double *th = qdL_scratch(L, (size_t)ns + 1, sizeof(double), "parameters");
    qdl_array *pa = qdL_testarray(L, 3);
    if (pa) {
        if (pa->cplx || pa->rows * pa->cols != (size_t)ns)
            return luaL_argerror(L, 3, lua_pushfstring(L, "%d real parameters expected", ns));
        memcpy(th, pa->data, sizeof(double) * (size_t)ns);
    } else {
        luaL_checktype(L, 3, LUA_TTABLE);
        if (lua_rawlen(L, 3) != (size_t)ns)
            return luaL_argerror(L, 3, lua_pushfstring(L, "%d parameters expected", ns));
        for (int k = 0; k < ns; k++) {
            if (lua_rawgeti(L, 3, k + 1) != LUA_TNUMBER)
                return luaL_argerror(L, 3, lua_pushfstring(L, "entry %d: number expected", k + 1));
            th[k] = lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
    }
    luaL_checktype(L, 4, LUA_TFUNCTION);
    qdL_checkoptions(L, 5, opts);
    if (c->ncondops || c->nchan)
        return luaL_error(L, "grad: no gradient through a conditional op or a channel on "
                             "pure states");
    qd_rng *rng = NULL;
    if (c->nmeas) {
        if (!lua_isnil(L, 5) && lua_getfield(L, 5, "rng") != LUA_TNIL) {
            if (!luaL_testudata(L, -1, QDL_RNG))
                return luaL_argerror(L, 5, "option 'rng': qd.Rng expected");
            rng = qdL_checkrng(L, lua_gettop(L));
        } else {
            rng = qdL_runrng(L);
        }
    }
    qd_dist_blocks b;
    check_block(L, 2, &b);
    const size_t count = X->count, nm = (size_t)c->nmeas, d = (size_t)1 << c->n;
    const size_t amps = d * count, ntmax = 2 * c->nops + 1;
    /* scratch on the Lua stack (collected whatever error follows) */
    qd_c *psi = qdL_scratch(L, amps * (2 + nm), sizeof(qd_c), "the gradient's states");
    qd_c *lam = psi + amps, *ck = lam + amps;
    double *pm = qdL_scratch(L, count * (nm + 2), sizeof(double), "outcome probabilities");
    size_t *oc = qdL_scratch(L, count * (nm ? nm : 1), sizeof(size_t), "outcomes");
    double *vals = qdL_scratch(L, count * ntmax, sizeof(double), "the gradient terms");
    double *scales = qdL_scratch(L, ntmax, sizeof(double), "the gradient terms");
    int *slots = qdL_scratch(L, ntmax, sizeof(int), "the gradient terms");
    memcpy(psi, X->a, sizeof(qd_c) * amps);
    qd_rng base;
    memset(&base, 0, sizeof base);
    if (nm)
        base = qd_rng_split(rng);   /* as c:grad: every rank's generator is in the same state */
    qd_meas_ctl mc = {&base, oc, 0, 0, NULL};
    qd_err e;
    if (qd_circuit_run_vec_tape_at(c, th, psi, count, &mc, nm ? ck : NULL, pm, b.first, &e))
        return qdL_raise(L, &e);
    int nout = qd_circuit_nout(c, NULL);
    qdl_reg *o = qdL_newreg(L, QDL_K_ENS, nout, count);
    if (nout != c->n)
        qd_circuit_extract_vec(c, psi, count, o->a);
    else
        memcpy(o->a, psi, sizeof(qd_c) * amps);
    int out_idx = lua_gettop(L);
    lua_pushvalue(L, 4);
    lua_pushvalue(L, out_idx);
    lua_call(L, 1, 2);
    if (lua_type(L, -2) != LUA_TNUMBER)
        return luaL_error(L, "grad: the loss function must return a number first, got %s",
                          luaL_typename(L, -2));
    qdl_reg *G = qdL_testkind(L, -1, QDL_K_ENS);
    if (!G || !G->a || G->n != nout || G->count != count)
        return luaL_error(L, "grad: the loss function's second result: qd.Ensemble of %d qubits "
                          "and %d members expected (shaped like the block's output)", nout,
                          (int)count);
    if (!X->a || c != qdL_checkcircuit(L, 1) || c->nslots != ns)
        return luaL_error(L, "grad: the loss function freed the input or changed the circuit");
    qd_adjoint_terms t = {vals, slots, scales, 0};
    if (qd_circuit_vjp_vec_tape_terms(c, th, count, b.total, nm ? oc : NULL, G->a, &t, psi, lam,
                                      nm ? ck : NULL, pm, &e))
        return qdL_raise(L, &e);
    qdl_array *gv = qdL_newarray(L, (size_t)ns, 1, 0, 1);
    double dummy;
    if (qd_dist_grad_terms(&t, count, b.total, ns, ns ? gv->data : &dummy, &e))
        return qdL_raise(L, &e);
    lua_pushvalue(L, out_idx + 1);   /* L */
    lua_insert(L, -2);               /* L, grad */
    lua_pushvalue(L, out_idx);       /* output */
    if (!nm)
        return 3;
    qdl_array *om = qdL_newarray(L, count, nm, 0, 0);
    for (size_t j = 0; j < count; j++)
        for (size_t i = 0; i < nm; i++)
            ((double *)om->data)[j + i * count] = (double)oc[j * nm + i];
    return 4;
}

/* ---------------------------------------------------------------- the scratch directory
 * Ranks other than 0 write their run records here (qd.record), never into the run
 * directory; it is removed when the Lua state closes (at exit). */
typedef struct {
    char path[256];
} scratch;

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

static int scratch_gc(lua_State *L)
{
    scratch *s = luaL_checkudata(L, 1, "qd.mpi.scratch");
    if (s->path[0])
        nftw(s->path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    s->path[0] = '\0';
    return 0;
}

static int l_scratch_dir(lua_State *L)
{
    qdL_checknargs(L, 0);
    if (lua_getfield(L, LUA_REGISTRYINDEX, "qd.mpi.scratch_dir") == LUA_TUSERDATA) {
        lua_pushstring(L, ((scratch *)lua_touserdata(L, -1))->path);
        return 1;
    }
    scratch *s = lua_newuserdatauv(L, sizeof *s, 0);
    s->path[0] = '\0';
    if (luaL_newmetatable(L, "qd.mpi.scratch")) {
        lua_pushcfunction(L, scratch_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    const char *tmp = getenv("TMPDIR");
    snprintf(s->path, sizeof s->path, "%s/qd-rank%d-XXXXXX", tmp && *tmp ? tmp : "/tmp",
             qd_dist_rank());
    if (!mkdtemp(s->path)) {
        s->path[0] = '\0';
        return luaL_error(L, "cannot create a scratch directory for rank %d", qd_dist_rank());
    }
    qdL_sandbox_allow_scratch(s->path);   /* the sandbox's one extra writable tree */
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, "qd.mpi.scratch_dir");
    lua_pushstring(L, s->path);
    return 1;
}

/* ---------------------------------------------------------------- qd.DistState */

static qd_dstate *check_ds(lua_State *L, int idx)
{
    qd_dstate *s = luaL_checkudata(L, idx, QDL_DSTATE);
    if (!s->a)
        luaL_argerror(L, idx, "distributed state has been freed");
    return s;
}

/* qd.mpi.dstate(n): |0..0> on n qubits over all ranks (every rank calls it) */
static int l_dstate(lua_State *L)
{
    qdL_checknargs(L, 1);
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 1 && n <= 62, 1, "qubit count 1..62 expected");
    qd_dstate *s = lua_newuserdatauv(L, sizeof *s, 0);
    memset(s, 0, sizeof *s);
    luaL_setmetatable(L, QDL_DSTATE);
    qd_err e;
    if (qd_dstate_new(s, (int)n, &e))
        return qdL_raise(L, &e);
    return 1;
}

static int ds_free(lua_State *L)
{
    qd_dstate *s = luaL_checkudata(L, 1, QDL_DSTATE);
    qd_dstate_free(s);
    return 0;
}

/* a gate method: s:h(q), s:rx(q, theta), s:cx(c, t) ... (upvalue: the registry row) */
static int ds_gate(lua_State *L)
{
    const qd_gate_info *g = lua_touserdata(L, lua_upvalueindex(1));
    qd_dstate *s = check_ds(L, 1);
    int m = g->nqubits, qs[8];
    double p[3];
    qdL_checknargs(L, 1 + m + g->nparams);
    for (int j = 0; j < m; j++) {
        qs[j] = qdL_checkqubit(L, 2 + j, s->n);
        for (int i = 0; i < j; i++)
            if (qs[i] == qs[j])
                return luaL_argerror(L, 2 + j, "distinct qubits expected");
    }
    for (int j = 0; j < g->nparams; j++) {
        p[j] = luaL_checknumber(L, 2 + m + j);
        if (p[j] != p[j] || p[j] - p[j] != 0)
            return luaL_argerror(L, 2 + m + j, "finite angle expected");
    }
    qd_err e;
    if (qd_dstate_gate(s, g, qs, p, &e))
        return qdL_raise(L, &e);
    lua_settop(L, 1);
    return 1;
}

static int ds_prob1(lua_State *L)
{
    qdL_checknargs(L, 2);
    qd_dstate *s = check_ds(L, 1);
    int q = qdL_checkqubit(L, 2, s->n);
    double p;
    qd_err e;
    if (qd_dstate_prob1(s, q, &p, &e))
        return qdL_raise(L, &e);
    lua_pushnumber(L, p);
    return 1;
}

/* s:expect_z({q...}) -> <Z_q1 Z_q2 ...> */
static int ds_expect_z(lua_State *L)
{
    qdL_checknargs(L, 2);
    qd_dstate *s = check_ds(L, 1);
    int qs[64];
    lua_Integer k = qdL_checklen(L, 2, 2, s->n, "qubits");
    for (lua_Integer j = 0; j < k; j++) {
        lua_Integer q = (lua_rawgeti(L, 2, j + 1), lua_tointeger(L, -1));
        if (!lua_isinteger(L, -1) || q < 0 || q >= s->n)
            return luaL_argerror(L, 2, lua_pushfstring(L, "entry %I: qubit 0..%d expected",
                                                       j + 1, s->n - 1));
        qs[j] = (int)q;
        lua_pop(L, 1);
    }
    double v;
    qd_err e;
    if (qd_dstate_expect_z(s, qs, (int)k, &v, &e))
        return qdL_raise(L, &e);
    lua_pushnumber(L, v);
    return 1;
}

/* s:probs() -> qd.Vector of 2^n probabilities on rank 0, nil on the others */
static int ds_probs(lua_State *L)
{
    qdL_checknargs(L, 1);
    qd_dstate *s = check_ds(L, 1);
    double *p;
    qd_err e;
    if (s->n > QD_MAX_QUBITS)
        return luaL_error(L, "probs: %d qubits do not fit on one rank (at most %d)", s->n,
                          QD_MAX_QUBITS);
    if (qd_dstate_probs_gather(s, 0, &p, &e))
        return qdL_raise(L, &e);
    if (!p) {
        lua_pushnil(L);
        return 1;
    }
    size_t D = (size_t)1 << s->n;
    double *keep = qdL_scratch(L, D, sizeof(double), "probabilities");   /* no leak on raise */
    memcpy(keep, p, D * sizeof(double));
    free(p);
    qdl_array *v = qdL_newarray(L, D, 1, 0, 1);
    memcpy(v->data, keep, D * sizeof(double));
    return 1;
}

/* s:state() -> the whole qd.State on rank 0, nil on the others */
static int ds_state(lua_State *L)
{
    qdL_checknargs(L, 1);
    qd_dstate *s = check_ds(L, 1);
    qd_c *a;
    qd_err e;
    if (s->n > QD_MAX_QUBITS)
        return luaL_error(L, "state: %d qubits do not fit on one rank (at most %d)", s->n,
                          QD_MAX_QUBITS);
    if (qd_dstate_amps_gather(s, 0, &a, &e))
        return qdL_raise(L, &e);
    if (!a) {
        lua_pushnil(L);
        return 1;
    }
    size_t D = (size_t)1 << s->n;
    qd_c *keep = qdL_scratch(L, D, sizeof(qd_c), "amplitudes");
    memcpy(keep, a, D * sizeof(qd_c));
    free(a);
    qdl_reg *r = qdL_newreg_uninit(L, QDL_K_STATE, s->n, 1);
    memcpy(r->a, keep, D * sizeof(qd_c));
    return 1;
}

/* s:sample([rng]) -> basis index 0..2^n-1 of a measurement of every qubit (every rank
 * must pass an rng in the same state: the run's generator is, on every rank) */
static int ds_sample(lua_State *L)
{
    qd_dstate *s = check_ds(L, 1);
    qd_rng *r = qdL_optrng(L, 2);
    qdL_checknargs(L, 2);
    size_t idx;
    qd_err e;
    if (qd_dstate_sample(s, qd_rng_uniform(r), &idx, &e))
        return qdL_raise(L, &e);
    lua_pushinteger(L, (lua_Integer)idx);
    return 1;
}

static int ds_inner(lua_State *L)
{
    qdL_checknargs(L, 2);
    qd_dstate *a = check_ds(L, 1), *b = check_ds(L, 2);
    qd_c z;
    qd_err e;
    if (qd_dstate_inner(a, b, &z, &e))
        return qdL_raise(L, &e);
    qdL_pushcomplex(L, z);
    return 2;
}

/* s:mmd_bits(q, {sigma = {...}}) -> MMD^2 between the Born distribution and q (a qd.Vector
 * of 2^n probabilities, each rank reading its part) by the Walsh–Hadamard expansion */
static int ds_mmd_bits(lua_State *L)
{
    static const char *const keys[] = {"sigma", NULL};
    qdL_checknargs(L, 3);
    qd_dstate *s = check_ds(L, 1);
    qdl_array *q = qdL_checkarray(L, 2);
    if (q->cplx || q->cols != 1 || q->rows != ((size_t)1 << s->n))
        return luaL_argerror(L, 2, "real qd.Vector of 2^n probabilities expected");
    qdL_checkoptions(L, 3, keys);
    double sig[16];
    int ns = 0;
    if (lua_istable(L, 3) && lua_getfield(L, 3, "sigma") != LUA_TNIL) {
        if (lua_type(L, -1) == LUA_TNUMBER) {
            sig[ns++] = lua_tonumber(L, -1);
        } else {
            lua_Integer k = qdL_checklen(L, 3, -1, 16, "bandwidths");
            for (lua_Integer j = 1; j <= k; j++) {
                lua_rawgeti(L, -1, j);
                sig[ns++] = lua_tonumber(L, -1);
                lua_pop(L, 1);
            }
        }
        lua_pop(L, 1);
    } else {
        return luaL_argerror(L, 3, "options table with 'sigma' (bandwidth or list of "
                             "bandwidths) expected");
    }
    for (int j = 0; j < ns; j++)
        if (!(sig[j] > 0) || sig[j] - sig[j] != 0)
            return luaL_argerror(L, 3, "option 'sigma': positive finite bandwidths expected");
    double *z = qdL_scratch(L, s->nloc, sizeof(double), "a Walsh-Hadamard transform");
    const double *qp = (const double *)q->data + (size_t)s->rank * s->nloc;
    for (size_t i = 0; i < s->nloc; i++)
        z[i] = creal(s->a[i]) * creal(s->a[i]) + cimag(s->a[i]) * cimag(s->a[i]) - qp[i];
    qd_err e;
    if (qd_dist_fwht(z, s->n, s->k, s, &e))
        return qdL_raise(L, &e);
    /* loss.c's qd_loss_mmd_bits_pauli: weight of a Pauli-Z string of weight w */
    double wt[64], v = 0;
    for (int w = 0; w <= s->n; w++) {
        wt[w] = 0;
        for (int j = 0; j < ns; j++) {
            double ps = 0.5 * (1.0 - exp(-1.0 / (2.0 * sig[j])));
            wt[w] += pow(1.0 - ps, s->n - w) * pow(ps, w) / (double)ns;
        }
    }
    unsigned long long base = (unsigned long long)s->rank << (s->n - s->k);
    for (size_t i = 0; i < s->nloc; i++)
        v += wt[__builtin_popcountll(base | i)] * z[i] * z[i];
    if (qd_dist_allreduce(&v, 1, 's', &e))
        return qdL_raise(L, &e);
    lua_pushnumber(L, v);
    return 1;
}

/* s:stats() -> {compute =, exchange = seconds, messages =, bytes =} on this rank */
static int ds_stats(lua_State *L)
{
    qdL_checknargs(L, 2);
    qd_dstate *s = check_ds(L, 1);
    int reset = lua_toboolean(L, 2);
    lua_createtable(L, 0, 4);
    lua_pushnumber(L, s->t_compute);
    lua_setfield(L, -2, "compute");
    lua_pushnumber(L, s->t_exchange);
    lua_setfield(L, -2, "exchange");
    lua_pushnumber(L, s->msgs);
    lua_setfield(L, -2, "messages");
    lua_pushnumber(L, s->bytes);
    lua_setfield(L, -2, "bytes");
    if (reset)
        s->t_compute = s->t_exchange = s->msgs = s->bytes = 0;
    return 1;
}

static int ds_index(lua_State *L)
{
    qd_dstate *s = luaL_checkudata(L, 1, QDL_DSTATE);
    const char *k = lua_tostring(L, 2);
    if (k && s->a && strcmp(k, "n") == 0) {
        lua_pushinteger(L, s->n);
        return 1;
    }
    if (k && s->a && strcmp(k, "local_qubits") == 0) {
        lua_pushinteger(L, s->n - s->k);
        return 1;
    }
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1));
    return 1;
}

static int ds_tostring(lua_State *L)
{
    qd_dstate *s = luaL_checkudata(L, 1, QDL_DSTATE);
    if (!s->a)
        lua_pushliteral(L, "qd.DistState (freed)");
    else
        lua_pushfstring(L, "qd.DistState: %d qubits on %d ranks (%d local qubits per rank)",
                        s->n, s->size, s->n - s->k);
    return 1;
}

void qdL_open_mpi(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"prob1", ds_prob1}, {"expect_z", ds_expect_z}, {"probs", ds_probs},
        {"state", ds_state}, {"sample", ds_sample}, {"inner", ds_inner},
        {"mmd_bits", ds_mmd_bits}, {"stats", ds_stats}, {"free", ds_free}, {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__gc", ds_free}, {"__close", ds_free}, {"__tostring", ds_tostring}, {NULL, NULL}};
    qdL_newclass(L, QDL_DSTATE, methods, ds_index, meta);
    size_t n;
    const qd_gate_info *g = qd_gate_list(&n);
    for (size_t i = 0; i < n; i++) {
        lua_pushlightuserdata(L, (void *)&g[i]);
        lua_pushcclosure(L, ds_gate, 1);
        lua_setfield(L, -2, g[i].name);
    }
    lua_pop(L, 1);
    static const luaL_Reg f[] = {
        {"barrier", l_barrier}, {"bcast_bytes", l_bcast_bytes},
        {"gather_bytes", l_gather_bytes}, {"send_bytes", l_send_bytes},
        {"recv_bytes", l_recv_bytes}, {"iprobe", l_iprobe}, {"allreduce", l_allreduce},
        {"array_pack", l_array_pack}, {"array_unpack", l_array_unpack},
        {"ens_pack", l_ens_pack}, {"ens_unpack", l_ens_unpack},
        {"ens_allgather", l_ens_allgather}, {"overlaps", l_overlaps}, {"mmd", l_mmd},
        {"grad", l_grad},
        {"scratch_dir", l_scratch_dir}, {"dstate", l_dstate}, {NULL, NULL}};
    luaL_newlib(L, f);
    lua_pushboolean(L, qd_dist_enabled());
    lua_setfield(L, -2, "enabled");
    lua_pushinteger(L, qd_dist_rank());
    lua_setfield(L, -2, "rank");
    lua_pushinteger(L, qd_dist_size());
    lua_setfield(L, -2, "size");
    lua_pushstring(L, qd_dist_library());
    lua_setfield(L, -2, "library");
    lua_setfield(L, -2, "mpi");
}
