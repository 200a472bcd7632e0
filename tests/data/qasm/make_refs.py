#!/usr/bin/env python3
"""make_refs.py — reference results for the OpenQASM corpus in tests/data/qasm/.

An independent dense simulator, written for the test (it shares no code or method with
qd's reader): its own tokenizer and parser, every gate as a matrix written from its
definition (qelib1.inc / stdgates.inc / Qiskit's gate docs), gate modifiers as matrices
(controlled blocks, conjugate transposes, matrix powers), user gates as the matrix of their
body (global phase included), and measurement as exact branching of the state vector on
outcomes, each branch carrying its classical bits, so classical control (`if`) is exact.
The result is the final density matrix sum_b |psi_b><psi_b|, written as
<name>.rho.npy (complex128, qubit 0 the most significant bit). Run:
    /usr/bin/python3 tests/data/qasm/make_refs.py
"""
import math, os, re, sys
import numpy as np

TOK = re.compile(r'''(?P<ws>\s+|//[^\n]*|/\*.*?\*/)|(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?P<unit>ns|us|ms|dt|s)?(?!\w)|(?P<id>[^\W\d]\w*)|(?P<str>"[^"]*")|(?P<op>->|\*\*|==|!=|<=|>=|&&|\|\||\+=|-=|[()\[\]{},;=+\-*/@^:<>!%])''', re.S)

def tokenize(text):
    toks, i = [], 0
    while i < len(text):
        m = TOK.match(text, i)
        if not m:
            raise SyntaxError("bad character %r" % text[i])
        i = m.end()
        if m.group('ws'):
            continue
        if m.group('num') is not None:
            toks.append(('dur' if m.group('unit') else 'num', m.group(0)))
        elif m.group('id'):
            toks.append(('id', m.group('id')))
        elif m.group('str'):
            toks.append(('str', m.group('str')[1:-1]))
        else:
            toks.append(('op', m.group('op')))
    toks.append(('eof', ''))
    return toks

# ------------------------------------------------------------------ gate matrices
I2 = np.eye(2, dtype=complex)
X = np.array([[0, 1], [1, 0]], dtype=complex)
Y = np.array([[0, -1j], [1j, 0]])
Z = np.diag([1, -1]).astype(complex)
H = np.array([[1, 1], [1, -1]], dtype=complex) / math.sqrt(2)
SX = np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]]) / 2

def U(t, f, l):
    c, s = math.cos(t / 2), math.sin(t / 2)
    return np.array([[c, -np.exp(1j * l) * s], [np.exp(1j * f) * s, np.exp(1j * (f + l)) * c]])

def P(l):
    return np.diag([1, np.exp(1j * l)])

def rot(P_, t):   # exp(-i t P / 2) for a Pauli product P (P^2 = I)
    return math.cos(t / 2) * np.eye(P_.shape[0]) - 1j * math.sin(t / 2) * P_

def ctrl(M, k=1, neg=False):
    d = M.shape[0]
    out = np.eye(d * 2 ** k, dtype=complex)
    if neg:
        out[:d, :d] = M
    else:
        out[-d:, -d:] = M
    return out

ECR = (np.kron(X, I2) - np.kron(Y, X)) / math.sqrt(2)
GATES = {   # name: (nparams, nqubits, matrix function)
    'U': (3, 1, U), 'u3': (3, 1, U), 'u': (3, 1, U),
    'u2': (2, 1, lambda f, l: U(math.pi / 2, f, l)),
    'u1': (1, 1, P), 'p': (1, 1, P), 'phase': (1, 1, P), 'u0': (1, 1, lambda g: I2),
    'id': (0, 1, lambda: I2), 'x': (0, 1, lambda: X), 'y': (0, 1, lambda: Y), 'z': (0, 1, lambda: Z),
    'h': (0, 1, lambda: H), 's': (0, 1, lambda: P(math.pi / 2)), 'sdg': (0, 1, lambda: P(-math.pi / 2)),
    't': (0, 1, lambda: P(math.pi / 4)), 'tdg': (0, 1, lambda: P(-math.pi / 4)),
    'sx': (0, 1, lambda: SX), 'sxdg': (0, 1, lambda: SX.conj().T),
    'rx': (1, 1, lambda t: rot(X, t)), 'ry': (1, 1, lambda t: rot(Y, t)), 'rz': (1, 1, lambda t: rot(Z, t)),
    'r': (2, 1, lambda t, f: rot(math.cos(f) * X + math.sin(f) * Y, t)),
    'CX': (0, 2, lambda: ctrl(X)), 'cx': (0, 2, lambda: ctrl(X)), 'cy': (0, 2, lambda: ctrl(Y)),
    'cz': (0, 2, lambda: ctrl(Z)), 'ch': (0, 2, lambda: ctrl(H)),
    'crx': (1, 2, lambda t: ctrl(rot(X, t))), 'cry': (1, 2, lambda t: ctrl(rot(Y, t))),
    'crz': (1, 2, lambda t: ctrl(rot(Z, t))), 'cu1': (1, 2, lambda l: ctrl(P(l))),
    'cp': (1, 2, lambda l: ctrl(P(l))), 'cphase': (1, 2, lambda l: ctrl(P(l))),
    'cu3': (3, 2, lambda t, f, l: ctrl(U(t, f, l))),
    'cu': (4, 2, lambda t, f, l, g: ctrl(np.exp(1j * g) * U(t, f, l))),
    'csx': (0, 2, lambda: ctrl(SX)),
    'swap': (0, 2, lambda: np.eye(4)[[0, 2, 1, 3]].astype(complex)),
    'iswap': (0, 2, lambda: np.array([[1, 0, 0, 0], [0, 0, 1j, 0], [0, 1j, 0, 0], [0, 0, 0, 1]])),
    'dcx': (0, 2, lambda: np.eye(4)[:, [0, 3, 1, 2]].astype(complex)),
    'rxx': (1, 2, lambda t: rot(np.kron(X, X), t)), 'ryy': (1, 2, lambda t: rot(np.kron(Y, Y), t)),
    'rzz': (1, 2, lambda t: rot(np.kron(Z, Z), t)), 'rzx': (1, 2, lambda t: rot(np.kron(Z, X), t)),
    'ecr': (0, 2, lambda: ECR),
    'ccx': (0, 3, lambda: ctrl(X, 2)), 'ccz': (0, 3, lambda: ctrl(Z, 2)),
    'cswap': (0, 3, lambda: ctrl(np.eye(4)[[0, 2, 1, 3]].astype(complex))),
    'c3x': (0, 4, lambda: ctrl(X, 3)), 'c4x': (0, 5, lambda: ctrl(X, 4)), 'c3sqrtx': (0, 4, lambda: ctrl(SX, 3)),
}
# the relative-phase Toffolis are defined by their circuits (qelib1.inc)
DEFS = '''
gate rccx a,b,c { u2(0,pi) c; u1(pi/4) c; cx b,c; u1(-pi/4) c; cx a,c; u1(pi/4) c; cx b,c; u1(-pi/4) c; u2(0,pi) c; }
gate rc3x a,b,c,d { u2(0,pi) d; u1(pi/4) d; cx c,d; u1(-pi/4) d; u2(0,pi) d; cx a,d; u1(pi/4) d; cx b,d;
  u1(-pi/4) d; cx a,d; u1(pi/4) d; cx b,d; u1(-pi/4) d; u2(0,pi) d; u1(pi/4) d; cx c,d; u1(-pi/4) d; u2(0,pi) d; }
'''

def apply(state, M, qs):
    k = len(qs)
    n = state.ndim
    T = M.reshape([2] * (2 * k))
    out = np.tensordot(T, state, axes=(list(range(k, 2 * k)), qs))
    return np.moveaxis(out, list(range(k)), qs)

# ------------------------------------------------------------------ the interpreter
MATH = {'pi': math.pi, 'π': math.pi, 'tau': 2 * math.pi, 'euler': math.e, 'sin': math.sin, 'cos': math.cos,
        'tan': math.tan, 'exp': math.exp, 'ln': math.log, 'sqrt': math.sqrt, 'arcsin': math.asin,
        'arccos': math.acos, 'arctan': math.atan, 'true': True, 'false': False}

class Branch:
    def __init__(self, vec, bits):
        self.vec, self.bits = vec, bits

class Sim:
    def __init__(self, text):
        self.qregs, self.cregs, self.vars, self.gates, self.subs = {}, {}, {}, {}, {}
        self.nq = 0
        self.version = 2
        self.ops = []      # (kind, ...) the program, unrolled
        self.toks, self.i = tokenize(DEFS), 0
        while self.peek()[0] != 'eof':
            self.statement({})
        self.toks, self.i = tokenize(text), 0
        while self.peek()[0] != 'eof':
            self.statement({})

    def peek(self, k=0): return self.toks[self.i + k]
    def next(self):
        t = self.toks[self.i]; self.i += 1; return t
    def expect(self, v):
        t = self.next()
        assert t[1] == v, (v, t, self.toks[self.i - 5:self.i + 2])
        return t
    def accept(self, v):
        if self.peek()[1] == v:
            self.i += 1
            return True
        return False

    def expr(self, env, stop=(',', ')', ';', ']', ':', '{', '}')):
        depth, parts = 0, []
        while True:
            t = self.peek()
            if depth == 0 and t[1] in stop and t[0] == 'op':
                break
            if t[0] == 'eof':
                raise SyntaxError('eof in expression')
            self.i += 1
            v = t[1]
            if v in ('(', '['): depth += 1
            if v in (')', ']'): depth -= 1
            if t[0] == 'id':
                if v in ('int', 'float', 'uint'):
                    v = {'int': 'int', 'uint': 'int', 'float': 'float'}[v]
                else:
                    v = 'V[%r]' % v
            elif v == '^': v = '**'
            elif v == '&&': v = ' and '
            elif v == '||': v = ' or '
            elif v == '!': v = ' not '
            parts.append(v)
        V = dict(MATH); V.update(self.vars); V.update(env)
        return eval(''.join(parts), {'V': V, 'int': int, 'float': float})

    def operand(self, env):
        name = self.next()[1]
        reg = env.get(('q', name)) or self.qregs[name]
        if not self.accept('['):
            return list(reg)
        a = self.expr(env)
        if self.accept(':'):
            b = self.expr(env)
            self.expect(']')
            return [reg[k] for k in range(a, b + 1)]
        self.expect(']')
        return [reg[a]]

    def bits(self, env):
        name = self.next()[1]
        reg = self.cregs[name]
        if self.accept('['):
            a = self.expr(env)
            self.expect(']')
            return [reg[a]]
        return list(reg)

    def block(self, env):
        if self.accept('{'):
            while not self.accept('}'):
                self.statement(env)
        else:
            self.statement(env)

    def skip_block(self):
        if self.accept('{'):
            d = 1
            while d:
                v = self.next()[1]
                d += (v == '{') - (v == '}')
        else:
            while self.next()[1] != ';':
                pass

    def statement(self, env):
        t = self.next()
        w = t[1]
        if w in ('OPENQASM',):
            self.version = int(float(self.next()[1])); self.expect(';')
        elif w == 'include':
            self.next(); self.expect(';')
        elif w in ('qreg', 'creg'):
            name = self.next()[1]; self.expect('['); n = self.expr(env); self.expect(']'); self.expect(';')
            self.declare(w == 'qreg', name, n)
        elif w in ('qubit', 'bit'):
            n = 1
            if self.accept('['):
                n = self.expr(env); self.expect(']')
            name = self.next()[1]
            self.declare(w == 'qubit', name, n)
            if self.accept('='):
                self.expect('measure')
                qs = self.operand(env)
                self.ops.append(('measure', qs, self.cregs[name]))
            self.expect(';')
        elif w == 'const' or w in ('int', 'uint', 'float', 'angle', 'bool'):
            if w == 'const':
                w = self.next()[1]
            if self.accept('['):
                self.expr(env); self.expect(']')
            name = self.next()[1]
            self.expect('=')
            v = self.expr(env)
            self.expect(';')
            self.vars[name] = int(v) if w in ('int', 'uint') else v
        elif w == 'let':
            name = self.next()[1]; self.expect('=')
            qs = self.operand(env)
            while self.accept('||'):
                qs += self.operand(env)
            self.expect(';')
            self.qregs[name] = qs
        elif w in ('delay', 'stretch', 'duration', 'barrier'):
            while self.next()[1] != ';':
                pass
        elif w == 'box':
            if self.accept('['):
                while self.next()[1] != ']':
                    pass
            self.block(env)
        elif w == 'gate':
            self.gate_def()
        elif w == 'def':
            self.def_stmt()
        elif w == 'measure':
            qs = self.operand(env)
            bits = self.bits(env) if self.accept('->') else [None] * len(qs)
            self.expect(';')
            self.ops.append(('measure', qs, bits))
        elif w == 'reset':
            qs = self.operand(env); self.expect(';')
            self.ops.append(('reset', qs))
        elif w == 'if':
            self.expect('(')
            neg = self.accept('!')
            name = self.peek()[1]
            bits = self.bits(env)
            op, val = '==', 1
            if self.peek()[1] in ('==', '!='):
                op = self.next()[1]
                val = self.expr(env)
            self.expect(')')
            cond = (bits, val, (op == '!=') != neg)
            start = len(self.ops)
            self.block(env)
            body = self.ops[start:]
            del self.ops[start:]
            self.ops.append(('if', cond, body, False))
            if self.peek()[1] == 'else':
                self.next()
                start = len(self.ops)
                self.block(env)
                body = self.ops[start:]
                del self.ops[start:]
                self.ops.append(('if', cond, body, True))
        elif w == 'for':
            if self.peek(1)[1] != 'in':
                self.next()
                if self.accept('['):
                    self.expr(env); self.expect(']')
            var = self.next()[1]
            self.expect('in')
            if self.accept('['):
                a = self.expr(env); self.expect(':'); b = self.expr(env)
                st = 1
                if self.accept(':'):
                    st, b = b, self.expr(env)
                self.expect(']')
                vals = range(a, b + 1 if st > 0 else b - 1, st)
            else:
                self.expect('{')
                vals = [self.expr(env)]
                while self.accept(','):
                    vals.append(self.expr(env))
                self.expect('}')
            start = self.i
            for v in vals:
                self.i = start
                env2 = dict(env); env2[var] = v
                self.block(env2)
            if not vals:
                self.skip_block()
        elif w in self.subs:
            self.sub_call(w, env)
        elif w in self.vars and self.peek()[1] in ('=', '+=', '-='):
            op = self.next()[1]
            v = self.expr(env)
            self.expect(';')
            self.vars[w] = v if op == '=' else self.vars[w] + (v if op == '+=' else -v)
        elif w in self.cregs:
            bits = self.cregs[w]
            if self.accept('['):
                a = self.expr(env); self.expect(']'); bits = [bits[a]]
            self.expect('='); self.expect('measure')
            qs = self.operand(env)
            self.expect(';')
            self.ops.append(('measure', qs, bits))
        else:
            self.i -= 1
            self.gate_call(env)

    def declare(self, quantum, name, n):
        if quantum:
            self.qregs[name] = list(range(self.nq, self.nq + n))
            self.nq += n
        else:
            base = sum(len(b) for b in self.cregs.values())
            self.cregs[name] = [(name, k) for k in range(n)]

    def modifiers(self, env):
        mods = []
        while self.peek()[1] in ('ctrl', 'negctrl', 'inv', 'pow') and self.peek(1)[1] in ('@', '('):
            w = self.next()[1]
            k = 1
            if self.accept('('):
                k = self.expr(env); self.expect(')')
            self.expect('@')
            mods.append((w, k))
        return mods

    def gate_call(self, env):
        mods = self.modifiers(env)
        name = self.next()[1]
        args = []
        if self.accept('('):
            if not self.accept(')'):
                args.append(self.expr(env))
                while self.accept(','):
                    args.append(self.expr(env))
                self.expect(')')
        ops = []
        if self.peek()[1] != ';':
            ops.append(self.operand(env))
            while self.accept(','):
                ops.append(self.operand(env))
        self.expect(';')
        M = self.matrix(name, args)
        for m, k in reversed(mods):
            if m == 'inv':
                M = M.conj().T
            elif m == 'pow':
                M = np.linalg.matrix_power(M, k) if k >= 0 else np.linalg.matrix_power(M.conj().T, -k)
            else:
                M = ctrl(M, k, m == 'negctrl')
        width = max([len(o) for o in ops] + [1])
        for j in range(width):
            qs = [o[j] if len(o) > 1 else o[0] for o in ops]
            if qs:
                self.ops.append(('gate', M, qs))
            else:
                self.ops.append(('phase', M[0, 0]))

    def matrix(self, name, args):
        if name == 'gphase':
            return np.array([[np.exp(1j * args[0])]])
        if name in self.gates:
            return self.gates[name](*args)
        np_, nq, f = GATES[name]
        assert len(args) == np_, name
        M = f(*args)
        # OpenQASM 3: U is the spec's 2pi-periodic matrix, e^{i theta/2} U3; stdgates.inc's
        # u3 and u2 are e^{-i(phi+lambda)/2} U3 (global phases, seen by ctrl @ only)
        if self.version == 3 and name == 'U':
            M = np.exp(0.5j * args[0]) * M
        elif self.version == 3 and name in ('u3', 'u2'):
            M = np.exp(-0.5j * (args[-2] + args[-1])) * M
        return M

    def gate_def(self):
        name = self.next()[1]
        params = []
        if self.accept('('):
            while not self.accept(')'):
                t = self.next()
                if t[1] != ',':
                    params.append(t[1])
        qargs = []
        while self.peek()[1] != '{':
            t = self.next()
            if t[1] != ',':
                qargs.append(t[1])
        start = self.i
        self.skip_block()
        end = self.i
        toks = self.toks
        def mat(*vals):
            # the body's matrix: run it on the k-qubit identity, columns as states
            sub = Sim.__new__(Sim)
            sub.qregs = {a: [i] for i, a in enumerate(qargs)}
            sub.cregs, sub.vars, sub.gates, sub.subs = {}, dict(self.vars), self.gates, self.subs
            sub.vars.update(dict(zip(params, vals)))
            sub.ops, sub.toks, sub.i, sub.nq = [], toks, start + 1, len(qargs)
            sub.version = self.version
            while sub.i < end - 1:
                sub.statement({})
            k = len(qargs)
            Mx = np.eye(2 ** k, dtype=complex)
            cols = []
            for c in range(2 ** k):
                v = Mx[:, c].reshape([2] * k)
                for op in sub.ops:
                    if op[0] == 'gate':
                        v = apply(v, op[1], op[2])
                    elif op[0] == 'phase':
                        v = v * op[1]
                cols.append(v.reshape(-1))
            return np.array(cols).T
        self.gates[name] = mat

    def def_stmt(self):
        name = self.next()[1]
        self.expect('(')
        params = []
        while not self.accept(')'):
            ty = self.next()[1]
            if ty == ',':
                continue
            size = None
            if self.accept('['):
                size = self.expr({}); self.expect(']')
            params.append((ty, self.next()[1]))
        start = self.i
        self.skip_block()
        self.subs[name] = (params, start)

    def sub_call(self, name, env):
        params, start = self.subs[name]
        self.expect('(')
        env2 = {}
        for k, (ty, pn) in enumerate(params):
            if k:
                self.expect(',')
            if ty == 'qubit':
                env2[('q', pn)] = self.operand(env)
            else:
                env2[pn] = self.expr(env)
        self.expect(')'); self.expect(';')
        back = self.i
        self.i = start
        self.block(env2)
        self.i = back

    # -------------------------------------------------------------- running
    def run(self):
        n = self.nq
        v = np.zeros([2] * n, dtype=complex)
        v[(0,) * n] = 1
        branches = [Branch(v, {})]
        branches = self.run_ops(self.ops, branches)
        d = 2 ** n
        rho = np.zeros((d, d), dtype=complex)
        for b in branches:
            f = b.vec.reshape(-1)
            rho += np.outer(f, f.conj())
        return rho

    def run_ops(self, ops, branches):
        for op in ops:
            if op[0] == 'gate':
                for b in branches:
                    b.vec = apply(b.vec, op[1], op[2])
            elif op[0] == 'phase':
                pass
            elif op[0] in ('measure', 'reset'):
                for j, q in enumerate(op[1]):
                    new = []
                    for b in branches:
                        for m in (0, 1):
                            v = np.array(b.vec)
                            idx = [slice(None)] * v.ndim
                            idx[q] = 1 - m
                            v[tuple(idx)] = 0
                            if np.vdot(v, v).real == 0:
                                continue
                            bits = dict(b.bits)
                            if op[0] == 'measure' and op[2][j] is not None:
                                bits[op[2][j]] = m
                            if op[0] == 'reset' and m:
                                v = apply(v, X, [q])
                            new.append(Branch(v, bits))
                    branches = new
            elif op[0] == 'if':
                (bits, val, neg), body, is_else = op[1], op[2], op[3]
                yes, no = [], []
                for b in branches:
                    got = sum(b.bits.get(x, 0) << k for k, x in enumerate(bits))
                    holds = (got == val) != neg
                    (yes if holds != is_else else no).append(b)
                branches = self.run_ops(body, yes) + no
        return branches

def main():
    # make_refs.py                       the corpus next to this file
    # make_refs.py --out DIR FILE...     any files (tests/data/qasm/qasmbench.lua uses this)
    here = os.path.dirname(os.path.abspath(__file__))
    args, out = sys.argv[1:], None
    if args[:1] == ['--out']:
        out, args = args[1], args[2:]
    names = args or sorted(os.path.join(here, f) for f in os.listdir(here) if f.endswith('.qasm'))
    for f in names:
        text = open(f if os.path.isabs(f) or out else os.path.join(here, f), encoding='utf-8').read()
        try:
            rho = Sim(text).run()
        except Exception as e:   # a construct this simulator does not read
            print('%-28s skipped (%s: %s)' % (os.path.basename(f), type(e).__name__, str(e)[:60]))
            continue
        base = os.path.basename(f)[:-5] + '.rho.npy'
        np.save(os.path.join(out or here, base), rho)
        print('%-28s %2d qubits  trace %.15f' % (os.path.basename(f), int(math.log2(rho.shape[0])), np.trace(rho).real))

if __name__ == '__main__':
    main()
