/*
 * lua_arith.c — arithmetic on qd objects, as a physicist writes it:
 *   s1 + s2, s1 - s2, 2 * s, s * 2, s / 2, -s        States (same n), results not normalised
 *   rho1 + rho2, 0.5 * rho, ...                        DensityMatrices (trace shown)
 *   E1 + E2, 2 * E                                     Ensembles (same n and N)
 *   M + N, M - N, a * M, M * N (matrix product), M * v Matrices and Vectors
 *   M:dagger(), M:trace(), M:eigh() -> w, V             Matrix methods
 *   qd.expect(O, obj)                                  O a qd.Matrix, qd.PauliSum or Pauli string
 *   qd.allclose(a, b [, {rtol=1e-9, atol=1e-12}]), a == b (allclose with the defaults)
 * Scalars may be numbers or {re, im}. Every result is a new object; operands are unchanged.
 * A State that arithmetic made is not normalised in general: it prints its norm, and the
 * value checks (E:set, qd.dm) refuse it until s:normalize().
 */
#include <complex.h>
#include <math.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "lua_util.h"

/* a scalar operand: a number or {re, im}; 1 if idx holds one */
static int toscalar(lua_State *L, int idx, qd_c *z)
{
    return qdL_tocomplex(L, idx, z);
}

static const char *tname(lua_State *L, int idx)
{
    if (luaL_getmetafield(L, idx, "__name") == LUA_TSTRING) {
        const char *s = lua_tostring(L, -1);
        lua_pop(L, 1);
        return s;
    }
    return luaL_typename(L, idx);
}

/* an operation neither side's arithmetic knows: the other operand's own metamethod when it
 * has one (rho * ch is the channel's composition rule, not ours), else an error */
static int operr_ev(lua_State *L, const char *op, const char *event, lua_CFunction self)
{
    for (int i = 2; i >= 1; i--)
        if (lua_type(L, i) == LUA_TUSERDATA && luaL_getmetafield(L, i, event) != LUA_TNIL) {
            if (lua_tocfunction(L, -1) != self) {
                lua_pushvalue(L, 1);
                lua_pushvalue(L, 2);
                lua_call(L, 2, 1);
                return 1;
            }
            lua_pop(L, 1);
        }
    return luaL_error(L, "cannot %s a %s and a %s (qd objects of one shape, or a qd object and a "
                         "number, expected)", op, tname(L, 1), tname(L, 2));
}
static int reg_add(lua_State *L), reg_sub(lua_State *L), reg_mul(lua_State *L), reg_div(lua_State *L);
static int arr_add(lua_State *L), arr_sub(lua_State *L), arr_mul(lua_State *L), arr_div(lua_State *L);


/* ---------------------------------------------------------------- registers */

static size_t reg_len(const qdl_reg *r)
{
    size_t d = (size_t)1 << r->n;
    return r->kind == QDL_K_DM ? d * d : d * r->count;
}

/* the register at idx, or NULL if it is none; a freed one is an error */
static qdl_reg *live_reg(lua_State *L, int idx)
{
    qdl_reg *r = NULL;
    for (int k = QDL_K_STATE; k <= QDL_K_ENS && !r; k++)
        r = qdL_testkind(L, idx, (qdl_kind)k);
    if (r && !r->a)
        luaL_error(L, "%s has been freed", qdL_kindname(r->kind));
    return r;
}

/* a + sign * b on two registers of the same kind and shape */
static int reg_addsub(lua_State *L, double sign, const char *op)
{
    qdl_reg *a = live_reg(L, 1), *b = live_reg(L, 2);
    if (!a || !b || a->kind != b->kind)
        return sign > 0 ? operr_ev(L, op, "__add", reg_add) : operr_ev(L, op, "__sub", reg_sub);
    if (a->n != b->n || a->count != b->count)
        return luaL_error(L, "cannot %s: %s of %d qubit%s%s and of %d qubit%s%s", op, qdL_kindname(a->kind), a->n,
                          a->n == 1 ? "" : "s", a->kind == QDL_K_ENS ? lua_pushfstring(L, " x %I", (LUAI_UACINT)a->count) : "",
                          b->n, b->n == 1 ? "" : "s",
                          b->kind == QDL_K_ENS ? lua_pushfstring(L, " x %I", (LUAI_UACINT)b->count) : "");
    qdl_reg *c = qdL_newreg_uninit(L, a->kind, a->n, a->count);
    size_t len = reg_len(a);
    for (size_t i = 0; i < len; i++)
        c->a[i] = a->a[i] + sign * b->a[i];
    return 1;
}

static int reg_add(lua_State *L)
{
    return reg_addsub(L, 1.0, "add");
}

static int reg_sub(lua_State *L)
{
    return reg_addsub(L, -1.0, "subtract");
}

/* z * r for a scalar z */
static int reg_scale(lua_State *L, const qdl_reg *r, qd_c z)
{
    qdl_reg *c = qdL_newreg_uninit(L, r->kind, r->n, r->count);
    size_t len = reg_len(r);
    for (size_t i = 0; i < len; i++)
        c->a[i] = z * r->a[i];
    return 1;
}

static int reg_mul(lua_State *L)
{
    qd_c z;
    qdl_reg *r;
    if (toscalar(L, 1, &z) && (r = live_reg(L, 2)))
        return reg_scale(L, r, z);
    if ((r = live_reg(L, 1)) && toscalar(L, 2, &z))
        return reg_scale(L, r, z);
    return operr_ev(L, "multiply", "__mul", reg_mul);
}

static int reg_div(lua_State *L)
{
    qd_c z;
    qdl_reg *r = live_reg(L, 1);
    if (!r || !toscalar(L, 2, &z))
        return operr_ev(L, "divide", "__div", reg_div);
    if (z == 0)
        return luaL_error(L, "division of a %s by zero", qdL_kindname(r->kind));
    return reg_scale(L, r, 1.0 / z);
}

static int reg_unm(lua_State *L)
{
    qdl_reg *r = qdL_checkreg(L, 1);
    return reg_scale(L, r, -1.0);
}

/* ---------------------------------------------------------------- arrays */

static int arr_len(const qdl_array *a, size_t *n)
{
    *n = a->rows * a->cols;
    return 1;
}

/* a new array shaped like a (complex if cplx), pushed */
static qdl_array *arr_like(lua_State *L, const qdl_array *a, int cplx, int idx_of_a)
{
    int vec = luaL_testudata(L, idx_of_a, QDL_VECTOR) != NULL;
    return qdL_newarray(L, a->rows, a->cols, cplx, vec);
}

static void arr_set(qdl_array *a, size_t i, qd_c z)
{
    if (a->cplx)
        ((qd_c *)a->data)[i] = z;
    else
        ((double *)a->data)[i] = creal(z);
}

static qdl_array *live_arr(lua_State *L, int idx);

/* a Vector or Matrix argument that has not been freed */
static qdl_array *check_live_arr(lua_State *L, int idx)
{
    qdl_array *a = qdL_checkarray(L, idx);
    if (a->freed)
        luaL_argerror(L, idx, "the array has been freed");
    return a;
}

static qdl_array *live_arr(lua_State *L, int idx)
{
    qdl_array *a = qdL_testarray(L, idx);
    if (a && a->freed)
        luaL_error(L, "%s has been freed", tname(L, idx));
    return a;
}

static int arr_addsub(lua_State *L, double sign, const char *op)
{
    qdl_array *a = live_arr(L, 1), *b = live_arr(L, 2);
    if ((a && !b && lua_type(L, 2) == LUA_TNUMBER) || (b && !a && lua_type(L, 1) == LUA_TNUMBER)) {
        /* v + x, x - v, ...: the number added to (or subtracted from) every entry */
        qdl_array *v = a ? a : b;
        double x = lua_tonumber(L, a ? 2 : 1);
        if (!isfinite(x))
            return luaL_error(L, "cannot %s a qd array and a non-finite number (%f)", op, x);
        size_t n;
        arr_len(v, &n);
        qdl_array *c = arr_like(L, v, v->cplx, a ? 1 : 2);
        if (!v->cplx) {   /* real: the same operations without the complex detour */
            const double *p = v->data;
            double *q = c->data;
            for (size_t i = 0; i < n; i++)
                q[i] = a ? p[i] + sign * x : x + sign * p[i];
            return 1;
        }
        for (size_t i = 0; i < n; i++) {
            qd_c e = qdL_array_get(v, i);
            arr_set(c, i, a ? e + sign * x : x + sign * e);
        }
        return 1;
    }
    if (!a || !b)
        return sign > 0 ? operr_ev(L, op, "__add", arr_add) : operr_ev(L, op, "__sub", arr_sub);
    if (a->rows != b->rows || a->cols != b->cols)
        return luaL_error(L, "cannot %s a %Ix%I and a %Ix%I array", op, (LUAI_UACINT)a->rows,
                          (LUAI_UACINT)a->cols, (LUAI_UACINT)b->rows, (LUAI_UACINT)b->cols);
    size_t n;
    arr_len(a, &n);
    qdl_array *c = arr_like(L, a, a->cplx || b->cplx, 1);
    if (!a->cplx && !b->cplx) {
        const double *p = a->data, *q = b->data;
        double *o = c->data;
        for (size_t i = 0; i < n; i++)
            o[i] = p[i] + sign * q[i];
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        arr_set(c, i, qdL_array_get(a, i) + sign * qdL_array_get(b, i));
    return 1;
}

static int arr_add(lua_State *L)
{
    return arr_addsub(L, 1.0, "add");
}

static int arr_sub(lua_State *L)
{
    return arr_addsub(L, -1.0, "subtract");
}

static int arr_scale(lua_State *L, int idx, const qdl_array *a, qd_c z)
{
    size_t n;
    arr_len(a, &n);
    qdl_array *c = arr_like(L, a, a->cplx || cimag(z) != 0, idx);
    for (size_t i = 0; i < n; i++)
        arr_set(c, i, z * qdL_array_get(a, i));
    return 1;
}

/* M * N: the matrix product (a Vector is a column) */
static int arr_matmul(lua_State *L, const qdl_array *a, const qdl_array *b)
{
    if (a->cols != b->rows)
        return luaL_error(L, "cannot multiply a %Ix%I matrix by a %Ix%I one", (LUAI_UACINT)a->rows,
                          (LUAI_UACINT)a->cols, (LUAI_UACINT)b->rows, (LUAI_UACINT)b->cols);
    int cplx = a->cplx || b->cplx;
    int vec = luaL_testudata(L, 2, QDL_VECTOR) != NULL;
    qdl_array *c = qdL_newarray(L, a->rows, b->cols, cplx, vec);
    size_t m = a->rows, n = b->cols, k = a->cols;
    if (!cplx) {   /* real x real: dgemm (fixed blocks, thread-count independent), in place */
        qd_la_dgemm('N', 'N', m, n, k, 1.0, a->data, m, b->data, k, 0.0, c->data, m);
        return 1;
    }
    /* complex: through zgemm, the real factor widened */
    qd_c *A = qdL_scratch(L, m * k, sizeof(qd_c), "a matrix product"), *B = qdL_scratch(L, k * n, sizeof(qd_c), "a matrix product");
    qd_c *C = qdL_scratch(L, m * n, sizeof(qd_c), "a matrix product");
    for (size_t i = 0; i < m * k; i++)
        A[i] = qdL_array_get(a, i);
    for (size_t i = 0; i < k * n; i++)
        B[i] = qdL_array_get(b, i);
    qd_la_zgemm('N', 'N', m, n, k, 1.0, A, m, B, k, 0.0, C, m);
    for (size_t i = 0; i < m * n; i++)
        arr_set(c, i, C[i]);
    lua_pop(L, 3);   /* the scratch buffers; the result stays */
    return 1;
}

/* M * s: a 2^n x 2^n matrix applied to a State (a new State, not normalised) */
static int arr_apply_state(lua_State *L, const qdl_array *a, const qdl_reg *s)
{
    size_t d = (size_t)1 << s->n;
    if (a->rows != d || a->cols != d)
        return luaL_error(L, "cannot multiply a %Ix%I matrix by a %d-qubit state", (LUAI_UACINT)a->rows,
                          (LUAI_UACINT)a->cols, s->n);
    qdl_reg *c = qdL_newreg(L, QDL_K_STATE, s->n, 1);
    for (size_t j = 0; j < d; j++)
        for (size_t i = 0; i < d; i++)
            c->a[i] += qdL_array_get(a, i + j * d) * s->a[j];
    return 1;
}

static int arr_mul(lua_State *L)
{
    qd_c z;
    qdl_array *a = live_arr(L, 1), *b;
    qdl_reg *s;
    if (toscalar(L, 1, &z) && (b = live_arr(L, 2)))
        return arr_scale(L, 2, b, z);
    if (a && toscalar(L, 2, &z))
        return arr_scale(L, 1, a, z);
    if (a && (b = live_arr(L, 2)))
        return arr_matmul(L, a, b);
    if (a && (s = live_reg(L, 2)) && s->kind == QDL_K_STATE)
        return arr_apply_state(L, a, s);
    return operr_ev(L, "multiply", "__mul", arr_mul);
}

static int arr_div(lua_State *L)
{
    qd_c z;
    qdl_array *a = live_arr(L, 1);
    if (!a || !toscalar(L, 2, &z))
        return operr_ev(L, "divide", "__div", arr_div);
    if (z == 0)
        return luaL_error(L, "division of a %s by zero", tname(L, 1));
    return arr_scale(L, 1, a, 1.0 / z);
}

static int arr_unm(lua_State *L)
{
    qdl_array *a = check_live_arr(L, 1);
    return arr_scale(L, 1, a, -1.0);
}

/* M:dagger() -> the conjugate transpose */
static int m_dagger(lua_State *L)
{
    qdl_array *a = check_live_arr(L, 1);
    qdL_checknargs(L, 1);
    qdl_array *c = qdL_newarray(L, a->cols, a->rows, a->cplx, 0);
    for (size_t j = 0; j < a->cols; j++)
        for (size_t i = 0; i < a->rows; i++)
            arr_set(c, j + i * a->cols, conj(qdL_array_get(a, i + j * a->rows)));
    return 1;
}

/* M:trace() -> re, im */
static int m_trace(lua_State *L)
{
    qdl_array *a = check_live_arr(L, 1);
    qdL_checknargs(L, 1);
    if (a->rows != a->cols)
        return luaL_error(L, "trace of a %Ix%I (not square) matrix", (LUAI_UACINT)a->rows, (LUAI_UACINT)a->cols);
    qd_c t = 0;
    for (size_t i = 0; i < a->rows; i++)
        t += qdL_array_get(a, i + i * a->rows);
    lua_pushnumber(L, creal(t));
    lua_pushnumber(L, cimag(t));
    return 2;
}

/* M:eigh() -> w (ascending real qd.Vector), V (eigenvectors as columns) of a Hermitian M */
static int m_eigh(lua_State *L)
{
    qdl_array *a = check_live_arr(L, 1);
    qdL_checknargs(L, 1);
    size_t d = a->rows;
    if (a->rows != a->cols || d == 0 || d > 4096)
        return luaL_error(L, "eigh of a %Ix%I matrix: square, at most 4096 x 4096 expected", (LUAI_UACINT)a->rows,
                          (LUAI_UACINT)a->cols);
    double dev = 0;
    for (size_t j = 0; j < d; j++)
        for (size_t i = 0; i < d; i++)
            dev = fmax(dev, cabs(qdL_array_get(a, i + j * d) - conj(qdL_array_get(a, j + i * d))));
    if (!(dev <= 1e-10))
        return luaL_error(L, "eigh: Hermitian matrix expected (max |M - M^dagger| = %f); eigenvalues of "
                             "other matrices are not provided", dev);
    qdl_array *w = qdL_newarray(L, d, 1, 0, 1);
    qdl_array *V = qdL_newarray(L, d, d, 1, 0);
    qd_c *A = V->data;
    for (size_t i = 0; i < d * d; i++)
        A[i] = qdL_array_get(a, i);
    qd_err e;
    if (qd_la_eigh(A, d, w->data, 1, &e) != QD_OK)
        return qdL_raise(L, &e);
    return 2;
}

/* ---------------------------------------------------------------- allclose, ==, expect */

/* |a_i - b_i| <= atol + rtol |b_i| for all i; -1 when the shapes differ */
static int close_all(lua_State *L, int ia, int ib, double rtol, double atol)
{
    qdl_reg *ra = live_reg(L, ia), *rb = live_reg(L, ib);
    if (ra || rb) {
        if (!ra || !rb || ra->kind != rb->kind || ra->n != rb->n || ra->count != rb->count)
            return -1;
        size_t n = reg_len(ra);
        for (size_t i = 0; i < n; i++)
            if (!(cabs(ra->a[i] - rb->a[i]) <= atol + rtol * cabs(rb->a[i])))
                return 0;
        return 1;
    }
    qdl_array *a = live_arr(L, ia), *b = live_arr(L, ib);
    if (!a || !b || a->rows != b->rows || a->cols != b->cols)
        return -1;
    for (size_t i = 0; i < a->rows * a->cols; i++) {
        qd_c x = qdL_array_get(a, i), y = qdL_array_get(b, i);
        if (!(cabs(x - y) <= atol + rtol * cabs(y)))
            return 0;
    }
    return 1;
}

/* qd.allclose(a, b [, {rtol=1e-9, atol=1e-12}]) -> boolean (false for different shapes) */
static int l_allclose(lua_State *L)
{
    qdL_checknargs(L, 3);
    static const char *const opts[] = {"rtol", "atol", NULL};
    qdL_checkoptions(L, 3, opts);
    double rtol = qdL_optnum(L, 3, "rtol", 1e-9, 0, INFINITY, 0);
    double atol = qdL_optnum(L, 3, "atol", 1e-12, 0, INFINITY, 0);
    for (int i = 1; i <= 2; i++)
        if (!live_reg(L, i) && !live_arr(L, i))
            luaL_argerror(L, i, lua_pushfstring(L, "qd object (State, DensityMatrix, Ensemble, Vector, Matrix) "
                                                   "expected, got %s", tname(L, i)));
    lua_pushboolean(L, close_all(L, 1, 2, rtol, atol) == 1);
    return 1;
}

/* a == b for two qd objects of one type: allclose with the default tolerances */
static int l_eq(lua_State *L)
{
    lua_pushboolean(L, close_all(L, 1, 2, 1e-9, 1e-12) == 1);
    return 1;
}

/* qd.expect(O, obj): O a 2^n x 2^n qd.Matrix (re, im of <psi|O|psi> or Tr(O rho); a complex
 * Vector per member for an Ensemble), or anything obj:expect takes (PauliSum, string) */
static int l_expect(lua_State *L)
{
    qdl_array *O = live_arr(L, 1);
    if (!O) {   /* obj:expect(O, ...) */
        int n = lua_gettop(L);
        qdL_checkreg(L, 2);
        luaL_getmetafield(L, 2, "methods");
        lua_getfield(L, -1, "expect");
        lua_remove(L, -2);
        lua_pushvalue(L, 2);
        lua_pushvalue(L, 1);
        for (int i = 3; i <= n; i++)
            lua_pushvalue(L, i);
        lua_call(L, n, LUA_MULTRET);
        return lua_gettop(L) - n;
    }
    qdL_checknargs(L, 2);
    qdl_reg *r = qdL_checkreg(L, 2);
    size_t d = (size_t)1 << r->n;
    if (O->rows != d || O->cols != d)
        return luaL_argerror(L, 1, lua_pushfstring(L, "%dx%d matrix for %d qubits expected, got %Ix%I", (int)d, (int)d,
                                                   r->n, (LUAI_UACINT)O->rows, (LUAI_UACINT)O->cols));
    if (r->kind == QDL_K_DM) {   /* Tr(O rho) = sum_ij O_ij rho_ji */
        qd_c t = 0;
        for (size_t j = 0; j < d; j++)
            for (size_t i = 0; i < d; i++)
                t += qdL_array_get(O, i + j * d) * r->a[j + i * d];
        lua_pushnumber(L, creal(t));
        lua_pushnumber(L, cimag(t));
        return 2;
    }
    qdl_array *out = r->kind == QDL_K_ENS ? qdL_newarray(L, r->count, 1, 1, 1) : NULL;
    qd_c last = 0;
    for (size_t m = 0; m < r->count; m++) {
        const qd_c *psi = r->a + m * d;
        qd_c t = 0;
        for (size_t j = 0; j < d; j++) {
            qd_c col = 0;
            for (size_t i = 0; i < d; i++)
                col += conj(psi[i]) * qdL_array_get(O, i + j * d);
            t += col * psi[j];
        }
        if (out)
            ((qd_c *)out->data)[m] = t;
        last = t;
    }
    if (out)
        return 1;
    lua_pushnumber(L, creal(last));
    lua_pushnumber(L, cimag(last));
    return 2;
}

/* ---------------------------------------------------------------- registration */

static void set_meta(lua_State *L, const char *type, const luaL_Reg *meta, const luaL_Reg *methods)
{
    luaL_getmetatable(L, type);
    luaL_setfuncs(L, meta, 0);
    if (methods) {
        lua_getfield(L, -1, "methods");
        luaL_setfuncs(L, methods, 0);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

void qdL_open_arith(lua_State *L)
{
    static const luaL_Reg reg_meta[] = {{"__add", reg_add}, {"__sub", reg_sub}, {"__mul", reg_mul},
                                        {"__div", reg_div}, {"__unm", reg_unm}, {"__eq", l_eq},
                                        {NULL, NULL}};
    static const luaL_Reg arr_meta[] = {{"__add", arr_add}, {"__sub", arr_sub}, {"__mul", arr_mul},
                                        {"__div", arr_div}, {"__unm", arr_unm}, {"__eq", l_eq},
                                        {NULL, NULL}};
    static const luaL_Reg mat_methods[] = {{"dagger", m_dagger}, {"trace", m_trace}, {"eigh", m_eigh},
                                           {NULL, NULL}};
    set_meta(L, QDL_STATE, reg_meta, NULL);
    set_meta(L, QDL_DM, reg_meta, NULL);
    set_meta(L, QDL_ENS, reg_meta, NULL);
    set_meta(L, QDL_VECTOR, arr_meta, NULL);
    set_meta(L, QDL_MATRIX, arr_meta, mat_methods);
    static const luaL_Reg fns[] = {{"allclose", l_allclose}, {"expect", l_expect}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
