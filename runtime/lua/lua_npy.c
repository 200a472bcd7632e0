/* lua_npy.c — .npy files for every object: obj:save_npy(path) and qd.load_npy(path [, kind]).
 * Shapes match numpy's view of our buffers: State (2^n,), Ensemble (N, 2^n) (member k is
 * row k, as in the QuDDPM reference data), DensityMatrix and Matrix (rows, cols) written
 * in Fortran order (our column-major buffer as is), Vector (len,).
 * Saving raises on failure (an experiment must not lose output silently); loading returns
 * nil, message for a missing or malformed file, since that is an outside condition. */
#include "lua_util.h"
#include "lua_sys.h"
#include <string.h>

static int save_reg(lua_State *L, qdl_reg *r, const char *path)
{
    size_t shape[2];
    qd_err e;
    qd_status st;
    size_t d = (size_t)1 << r->n;
    if (r->kind == QDL_K_STATE) {
        shape[0] = d;
        st = qd_npy_write(path, r->a, 1, 1, shape, 0, &e);
    } else if (r->kind == QDL_K_ENS) {
        shape[0] = r->count;
        shape[1] = d;
        st = qd_npy_write(path, r->a, 1, 2, shape, 0, &e);
    } else {
        shape[0] = shape[1] = d;
        st = qd_npy_write(path, r->a, 1, 2, shape, 1, &e);
    }
    return st == QD_OK ? 0 : (qdL_raise(L, &e), 0);
}

/* obj:save_npy(path) -> obj */
static int m_save_npy(lua_State *L)
{
    qdl_array *a = qdL_testarray(L, 1);
    if (!a)
        qdL_checkreg(L, 1);   /* self first: a freed or wrong object is reported as such */
    qdL_checknargs(L, 2);
    const char *path = luaL_checkstring(L, 2);
    qdL_check_path(L, path, 1);   /* --sandbox: lua_sys.c */
    if (a) {
        qd_err e;
        size_t shape[2] = {a->rows, a->cols};
        int vec = luaL_testudata(L, 1, QDL_VECTOR) != NULL;
        if (vec)
            shape[0] = a->rows * a->cols;
        if (qd_npy_write(path, a->data, a->cplx, vec ? 1 : 2, shape, vec ? 0 : 1, &e) != QD_OK)
            return qdL_raise(L, &e);
    } else {
        save_reg(L, qdL_checkreg(L, 1), path);
    }
    lua_settop(L, 1);
    return 1;
}

static int log2_exact(size_t d)
{
    if (d < 2 || (d & (d - 1)))
        return -1;
    int n = 0;
    while (((size_t)1 << n) < d)
        n++;
    return n;
}

static qd_c getc_(const qd_npy *f, size_t i)
{
    return f->is_complex ? ((qd_c *)f->data)[i] : ((double *)f->data)[i];
}

/* tolerance of the value checks for the file's data: single-precision data (every
 * component exactly a float, as from a complex64 / float32 file) is normalised only to
 * float precision */
static double data_tol(const qd_npy *f)
{
    size_t m = f->count * (f->is_complex ? 2 : 1);
    const double *x = f->data;
    for (size_t i = 0; i < m; i++)
        if ((double)(float)x[i] != x[i])
            return QDL_NORM_TOL;
    return QDL_NORM_TOL_F32;
}

/* nil, "<path>: <problem>" if the count states of 2^n amplitudes fail the value checks */
static int bad_amps(lua_State *L, const char *path, const qd_npy *f, const qd_c *a, int n, size_t count)
{
    char msg[160];
    if (!qdL_amps_problem(a, n, count, data_tol(f), msg, sizeof msg))
        return 0;
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, msg);
    return 1;
}

/* a qd_npy is held in a userdata with __gc so it is freed whatever error follows */
static int npy_gc(lua_State *L)
{
    qd_npy *f = lua_touserdata(L, 1);
    if (f && f->data) {
        qd_free(f->data);
        f->data = NULL;
    }
    return 0;
}

static int fail(lua_State *L, const char *msg)
{
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
}

/* qd.load_npy(path [, kind]) -> object | nil, message
 * kind: "state", "ensemble", "dm", "vector", "matrix", "ensembles" (3-d (T, N, 2^n) -> table
 * of Ensembles). Without kind: 1-d complex of length 2^n -> State, other 1-d -> Vector,
 * 2-d -> Matrix, 3-d -> table of Ensembles. */
static int l_load_npy(lua_State *L)
{
    qdL_checknargs(L, 2);
    const char *path = luaL_checkstring(L, 1);
    qdL_check_path(L, path, 0);   /* --sandbox: lua_sys.c */
    static const char *const kinds[] = {"auto", "state", "ensemble", "dm", "vector", "matrix", "ensembles", NULL};
    int kind = luaL_checkoption(L, 2, "auto", kinds);
    qd_npy *f = lua_newuserdatauv(L, sizeof *f, 0);
    memset(f, 0, sizeof *f);
    lua_newtable(L);
    lua_pushcfunction(L, npy_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    qd_err e;
    if (qd_npy_read(path, f, &e) != QD_OK)
        return fail(L, e.msg);
    int nd = f->ndim;
    if (kind == 0) {
        if (nd == 1)
            kind = (f->is_complex && log2_exact(f->shape[0]) > 0) ? 1 : 4;
        else if (nd == 2)
            kind = 5;
        else if (nd == 3)
            kind = 6;
        else
            return fail(L, lua_pushfstring(L, "%s: cannot infer an object from a %d-d array; give a kind", path, nd));
    }
    char shp[128];
    {
        int o = 0;
        o += snprintf(shp + o, sizeof shp - (size_t)o, "(");
        for (int i = 0; i < nd && o < 100; i++)
            o += snprintf(shp + o, sizeof shp - (size_t)o, i ? ", %zu" : "%zu", f->shape[i]);
        snprintf(shp + o, sizeof shp - (size_t)o, nd == 1 ? ",)" : ")");
    }
    switch (kind) {
    case 1: { /* state */
        size_t d = nd == 1 ? f->shape[0] : (nd == 2 && f->shape[0] == 1 ? f->shape[1] : 0);
        int n = log2_exact(d);
        if (n < 1)
            return fail(L, lua_pushfstring(L, "%s: a state needs shape (2^n,), got %s", path, shp));
        qdl_reg *s = qdL_newreg(L, QDL_K_STATE, n, 1);
        for (size_t i = 0; i < d; i++)
            s->a[i] = getc_(f, i);
        return bad_amps(L, path, f, s->a, n, 1) ? 2 : 1;
    }
    case 2: { /* ensemble (N, 2^n) */
        int n = nd == 2 ? log2_exact(f->shape[1]) : -1;
        if (n < 1 || f->shape[0] < 1)
            return fail(L, lua_pushfstring(L, "%s: an ensemble needs shape (N, 2^n), got %s", path, shp));
        qdl_reg *E = qdL_newreg(L, QDL_K_ENS, n, f->shape[0]);
        for (size_t i = 0; i < f->count; i++)
            E->a[i] = getc_(f, i);
        return bad_amps(L, path, f, E->a, n, E->count) ? 2 : 1;
    }
    case 3: { /* dm (2^n, 2^n) */
        int n = nd == 2 && f->shape[0] == f->shape[1] ? log2_exact(f->shape[0]) : -1;
        if (n < 1)
            return fail(L, lua_pushfstring(L, "%s: a density matrix needs shape (2^n, 2^n), got %s", path, shp));
        qdl_reg *r = qdL_newreg(L, QDL_K_DM, n, 1);
        size_t d = f->shape[0];
        for (size_t i = 0; i < d; i++)
            for (size_t j = 0; j < d; j++)
                r->a[i + j * d] = getc_(f, i * d + j);   /* C order -> column-major */
        char msg[200];
        if (qdL_dm_problem(r->a, n, data_tol(f), msg, sizeof msg))
            return fail(L, lua_pushfstring(L, "%s: %s", path, msg));
        return 1;
    }
    case 4: { /* vector: any shape, flattened in C order */
        qdl_array *v = qdL_newarray(L, f->count, 1, f->is_complex, 1);
        if (f->count)
            memcpy(v->data, f->data, f->count * (f->is_complex ? sizeof(qd_c) : sizeof(double)));
        return 1;
    }
    case 5: { /* matrix */
        if (nd != 2)
            return fail(L, lua_pushfstring(L, "%s: a matrix needs a 2-d array, got shape %s", path, shp));
        size_t R = f->shape[0], C = f->shape[1];
        qdl_array *m = qdL_newarray(L, R, C, f->is_complex, 0);
        for (size_t i = 0; i < R; i++)
            for (size_t j = 0; j < C; j++) {
                if (f->is_complex)
                    ((qd_c *)m->data)[i + j * R] = ((qd_c *)f->data)[i * C + j];
                else
                    ((double *)m->data)[i + j * R] = ((double *)f->data)[i * C + j];
            }
        return 1;
    }
    default: { /* ensembles (T, N, 2^n) */
        int n = nd == 3 ? log2_exact(f->shape[2]) : -1;
        if (n < 1 || f->shape[1] < 1)
            return fail(L, lua_pushfstring(L, "%s: ensembles need shape (T, N, 2^n), got %s", path, shp));
        size_t T = f->shape[0], N = f->shape[1], d = f->shape[2];
        lua_createtable(L, (int)T, 0);
        for (size_t t = 0; t < T; t++) {
            qdl_reg *E = qdL_newreg(L, QDL_K_ENS, n, N);
            for (size_t i = 0; i < N * d; i++)
                E->a[i] = getc_(f, t * N * d + i);
            if (bad_amps(L, path, f, E->a, n, N)) {
                lua_pushfstring(L, "%s (ensemble %d)", lua_tostring(L, -1), (int)t + 1);
                lua_remove(L, -2);   /* nil, message */
                return 2;
            }
            lua_rawseti(L, -2, (lua_Integer)t + 1);
        }
        return 1;
    }
    }
}

/* entry t of a stack: its kind, and the shape it needs (count members of 2^n amplitudes) */
static const char *stack_kind_name(int kind)
{
    return kind == QDL_K_ENS ? "qd.Ensemble" : kind == QDL_K_DM ? "qd.DensityMatrix" : "qd.State";
}

/* the State, DensityMatrix or Ensemble at idx (freed or not), or NULL */
static qdl_reg *test_any(lua_State *L, int idx)
{
    const qdl_kind kinds[] = {QDL_K_STATE, QDL_K_DM, QDL_K_ENS};
    for (int i = 0; i < 3; i++) {
        qdl_reg *r = qdL_testkind(L, idx, kinds[i]);
        if (r)
            return r;
    }
    return NULL;
}

/* copies entry E (kind) into dst: ensembles and states as stored (member-major), density
 * matrices transposed from column-major into numpy's row-major (i, j) order */
static void stack_copy(const qdl_reg *E, qd_c *dst, size_t per)
{
    if (E->kind != QDL_K_DM) {
        memcpy(dst, E->a, per * sizeof(qd_c));
        return;
    }
    size_t d = (size_t)1 << E->n;
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++)
            dst[i * d + j] = E->a[i + j * d];
}

/* save_stack(path, {x1, x2, ...}) with entries all of one kind (only = that kind, or -1:
 * whichever kind entry 1 has) and one shape: (T, N, 2^n) ensembles, (T, 2^n, 2^n) density
 * matrices, (T, 2^n) states */
static int save_stack(lua_State *L, int only)
{
    qdL_checknargs(L, 2);
    const char *path = luaL_checkstring(L, 1);
    qdL_check_path(L, path, 1);   /* --sandbox: lua_sys.c */
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    const char *what = only == QDL_K_ENS ? "table of qd.Ensemble" : "table of states, density matrices or ensembles";
    lua_Integer T = qdL_checklen(L, 2, 2, (lua_Integer)1 << 40, what);
    if (T < 1)
        return luaL_argerror(L, 2, lua_pushfstring(L, "non-empty %s expected", what));
    int n = -1, kind = only;
    size_t N = 0, per = 0;
    qd_c *buf = NULL;
    /* each entry is read once and copied at once (a table answering differently on a
     * second read cannot outgrow the buffer sized from the first) */
    for (lua_Integer t = 1; t <= T; t++) {
        lua_geti(L, 2, t);
        qdl_reg *E = test_any(L, -1);
        if (E && kind >= 0 && (int)E->kind != kind)
            E = NULL;
        if (!E || !E->a)
            return luaL_argerror(L, 2, lua_pushfstring(L, "%s expected at position %d, got %s",
                                                       kind >= 0 ? stack_kind_name(kind) : "qd.State, qd.DensityMatrix or qd.Ensemble",
                                                       (int)t,
                                                       E ? lua_pushfstring(L, "a freed %s", qdL_kindname(E->kind))
                                                         : luaL_getmetafield(L, -1, "__name") == LUA_TSTRING
                                                               ? lua_tostring(L, -1)
                                                               : luaL_typename(L, -1)));
        if (t == 1) {
            n = E->n;
            kind = E->kind;
            N = kind == QDL_K_ENS ? E->count : 1;
            per = (kind == QDL_K_DM ? (size_t)1 << n : N) * ((size_t)1 << n);
            buf = qdL_scratch(L, (size_t)T, per * sizeof(qd_c), "the stack's buffer");
            lua_insert(L, -2);
        } else if (E->n != n || (kind == QDL_K_ENS && E->count != N)) {
            return luaL_argerror(L, 2, lua_pushfstring(L, "%s of equal shape expected (position %d differs from position 1)",
                                                       kind == QDL_K_ENS ? "ensembles" : kind == QDL_K_DM ? "density matrices" : "states",
                                                       (int)t));
        }
        stack_copy(E, buf + (size_t)(t - 1) * per, per);
        lua_pop(L, 1);
    }
    size_t d = (size_t)1 << n;
    size_t shape[3] = {(size_t)T, kind == QDL_K_ENS ? N : d, d};
    qd_err e;
    if (qd_npy_write(path, buf, 1, kind == QDL_K_STATE ? 2 : 3, shape, 0, &e) != QD_OK)
        return qdL_raise(L, &e);
    return 0;
}

/* qd.save_ensembles(path, {E0, E1, ...}) -> writes shape (T, N, 2^n), the layout of the
 * QuDDPM reference data (one ensemble per diffusion step); all ensembles the same size. */
static int l_save_ensembles(lua_State *L) { return save_stack(L, QDL_K_ENS); }

/* qd.save_stack(path, {x1, x2, ...}) -> one .npy of equal-shaped objects of one kind:
 * (T, 2^n) states, (T, 2^n, 2^n) density matrices (rho[i, j] at [t, i, j]), (T, N, 2^n)
 * ensembles */
static int l_save_stack(lua_State *L) { return save_stack(L, -1); }

void qdL_open_npy(lua_State *L)
{
    /* add save_npy to every object's methods */
    const char *mts[] = {QDL_STATE, QDL_DM, QDL_ENS, QDL_VECTOR, QDL_MATRIX};
    for (int i = 0; i < 5; i++) {
        luaL_getmetatable(L, mts[i]);
        lua_getfield(L, -1, "methods");
        lua_pushcfunction(L, m_save_npy);
        lua_setfield(L, -2, "save_npy");
        lua_pop(L, 2);
    }
    lua_pushcfunction(L, l_load_npy);
    lua_setfield(L, -2, "load_npy");
    lua_pushcfunction(L, l_save_ensembles);
    lua_setfield(L, -2, "save_ensembles");
    lua_pushcfunction(L, l_save_stack);
    lua_setfield(L, -2, "save_stack");
}
