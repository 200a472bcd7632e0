-- qd.help — one-paragraph docs for functions, types and methods. help(x) prints the doc of
-- x: a qd function or constructor (help(qd.state)), an object (help(s) documents its type
-- and lists its methods), or a name ("qd.State:measure", "rx").
local M = {}

local docs = {
  ["qd.state"] = [==[qd.state(n [, bits]) -> qd.State
  The n-qubit basis state |0...0>, or |bits> for a bitstring such as "0110" (qubit 0 is the
  leftmost character, the most significant bit of the basis index).
  qd.state.from(amps): a state from a table of amplitudes (numbers or {re, im} pairs) or a
  qd.Vector, length 2^n; taken as given (call :normalize() if needed).]==],
  ["qd.state.from"] = [==[qd.state.from(amps) -> qd.State
  amps: table of 2^n numbers or {re, im} pairs, or a qd.Vector. Not normalised for you.]==],
  ["qd.haar_state"] = [==[qd.haar_state(n [, rng]) -> qd.State
  A Haar-random pure state (normalised complex Gaussian vector), drawn from rng or the run's
  generator (qd.run_rng(), seeded by --seed).]==],
  ["qd.dm"] = [==[qd.dm(n | state | matrix) -> qd.DensityMatrix
  |0..0><0..0| on n qubits, |s><s| of a qd.State, or a given 2^n x 2^n matrix (qd.Matrix or
  table of rows) that must be Hermitian, trace 1 and positive semidefinite (tolerance 1e-8).]==],
  ["qd.maximally_mixed"] = [==[qd.maximally_mixed(n) -> qd.DensityMatrix
  I / 2^n.]==],
  ["qd.ensemble"] = [==[qd.ensemble(n, N) -> qd.Ensemble
  N copies of |0...0> on n qubits, stored as one 2^n x N column-major buffer. Also
  qd.ensemble.haar(n, N [, rng]) (member k from substream k: independent of batch size) and
  qd.ensemble.from{s1, s2, ...} or from(M) with M an N x 2^n qd.Matrix (one member per row).
  E[k] is a copy of member k (1-based), #E the number of members, E.n the qubits.]==],
  ["qd.ensemble.haar"] = [==[qd.ensemble.haar(n, N [, rng]) -> qd.Ensemble of N Haar-random states.]==],
  ["qd.ensemble.from"] = [==[qd.ensemble.from{states} | qd.ensemble.from(M) -> qd.Ensemble]==],
  ["qd.vector"] = [==[qd.vector(n [, {complex=true}]) | qd.vector{x1, x2, ...} -> qd.Vector
  Dense real or complex vector (entries numbers or {re, im}); v[i], v:get(i) (re, im for
  complex), v:set(i, x), #v, v:totable(), v:sum(), v:mean(), v:save_npy(path).]==],
  ["qd.matrix"] = [==[qd.matrix(rows, cols [, {complex=true}]) | qd.matrix{{...}, {...}} -> qd.Matrix
  Dense column-major matrix; M:get(i, j), M:set(i, j, x), M:shape(), M:totable() (rows).]==],
  ["qd.rng"] = [==[qd.rng(seed) -> qd.Rng
  Counter-based, splittable generator: r:uniform([a, b [, n]]), r:normal([mu, sigma [, n]]),
  r:integer(lo, hi), r:split() (a new independent generator; advances r), r:substream(k),
  r:seed(). With n the draws come back as a qd.Vector.]==],
  ["qd.run_rng"] = [==[qd.run_rng() -> qd.Rng
  The run's generator, seeded by `qd --seed N` (default 1). Random functions use it when
  no rng is passed.]==],
  ["qd.set_seed"] = [==[qd.set_seed(seed): reseed the run's generator.]==],
  ["qd.kron"] = [==[qd.kron(a, b) -> tensor product; a's qubits come first (most significant).
  State (x) State is a State; if either is a DensityMatrix the result is one.]==],
  ["qd.fidelity"] = [==[qd.fidelity(a, b) -> number
  |<a|b>|^2 for two states, <a|rho|a> for a state and a density matrix, and the Uhlmann
  fidelity (Tr sqrt(sqrt(rho) sigma sqrt(rho)))^2 for two density matrices.]==],
  ["qd.trace_distance"] = [==[qd.trace_distance(a, b) -> 1/2 ||rho - sigma||_1 (states promoted to |s><s|).]==],
  ["qd.purity"] = [==[qd.purity(x) -> Tr rho^2.]==],
  ["qd.entropy"] = [==[qd.entropy(x) -> von Neumann entropy -Tr rho ln rho (natural log).]==],
  ["qd.load_npy"] = [==[qd.load_npy(path [, kind]) -> object | nil, message
  Reads a numpy .npy file (complex64/128, float32/64, integer dtypes; C or Fortran order).
  kind: "state" (2^n,), "ensemble" (N, 2^n), "dm" (2^n, 2^n), "vector", "matrix",
  "ensembles" (T, N, 2^n) -> table of T ensembles. Without kind: 1-d complex of length 2^n
  -> State, other 1-d -> Vector, 2-d -> Matrix, 3-d -> table of Ensembles.
  obj:save_npy(path) writes any object (raises on failure; writes atomically).]==],
  ["qd.gates"] = [==[qd.gates() -> {name = {qubits=, params=, doc=}}: the gate table.]==],
  ["qd.gate_matrix"] = [==[qd.gate_matrix(name, params...) -> qd.Matrix of the gate.]==],
  ["qd.set_threads"] = [==[qd.set_threads(n): threads for core loops and OpenBLAS. Results do not depend on it.]==],
  ["qd.type"] = [==[qd.type(x) -> "qd.State", "qd.Ensemble", ... for qd objects, type(x) otherwise.]==],
  ["qd.help"] = [==[help(x): print the documentation of x (a function, an object, or a name).]==],

  ["qd.State"] = [==[qd.State: a pure state of n qubits (2^n amplitudes, qubit 0 = most
  significant bit). s.n, s.dim, #s (= 2^n). Gates: s:h(0), s:rx(1, theta), s:cx(0, 1), ...
  (qubits first, then angles; each returns s). Printing shows the ket expansion.]==],
  ["qd.DensityMatrix"] = [==[qd.DensityMatrix: a mixed state, 2^n x 2^n column-major. Gates act as
  rho -> U rho U^dagger. rho:get(i, j), rho:matrix(), rho:trace(), rho:purity(),
  rho:entropy(), rho:eigenvalues(), measurement and partial trace as for states.]==],
  ["qd.Ensemble"] = [==[qd.Ensemble: N pure states of n qubits in one buffer. E[k] (copy, 1-based),
  E:set(k, s), #E, E.n. Gates on all members at once; an angle may be a qd.Vector (or
  table) of N per-member angles. E:overlaps(F) (N x M matrix of |<a|b>|^2, one zgemm),
  E:fidelities(s), E:mean_dm(), E:expect(P, qubits) (qd.Vector), E:probs() (matrix,
  one column per member), E:measure(qubits, rng) (each member its own outcome), E:embed(na).]==],
  ["qd.Vector"] = [==[qd.Vector: dense real/complex vector; see help(qd.vector).]==],
  ["qd.Matrix"] = [==[qd.Matrix: dense real/complex column-major matrix; see help(qd.matrix).]==],
  ["qd.Rng"] = [==[qd.Rng: seeded generator; see help(qd.rng).]==],

  -- methods (shared names across types)
  ["unitary"] = [==[obj:unitary(U, {q1, ..., qk}) applies a 2^k x 2^k unitary (qd.Matrix or table
  of rows); q1 is the most significant bit of U's index. Checked for unitarity (1e-8).]==],
  ["probs"] = [==[obj:probs([qubits]) -> qd.Vector of the 2^k outcome probabilities of the
  given qubits (all by default); the first listed qubit is the most significant bit.
  On an Ensemble: a 2^k x N qd.Matrix, one column per member.]==],
  ["sample"] = [==[obj:sample(shots [, rng] [, {qubits={...}}]) -> {["0101"] = count, ...}]==],
  ["measure"] = [==[obj:measure(qubits [, rng] [, {keep=true}]) -> outcome, probability, post-state
  Projective measurement in the computational basis. keep=true collapses obj in place
  (post-state is obj, renormalised); keep=false returns a new object on the unmeasured
  qubits. Ensembles: outcomes is a table of bitstrings, probabilities a qd.Vector, each
  member drawing from its own substream.]==],
  ["project"] = [==[s:project(qubits, "01" [, {keep=true}]) -> probability, post-state for a fixed outcome.]==],
  ["expect"] = [==[obj:expect("XZ", {0, 2}) or obj:expect("XIZ") -> <P> (a qd.Vector on an Ensemble).]==],
  ["embed"] = [==[obj:embed(na) -> |0..0>_A (x) obj, with the na ancillas as the most significant qubits.]==],
  ["ptrace"] = [==[obj:ptrace({kept qubits}) -> qd.DensityMatrix on the kept qubits (in the given order).]==],
  ["schmidt_rank"] = [==[s:schmidt_rank({qubits of A} [, tol=1e-10]) -> number of Schmidt coefficients > tol.]==],
  ["overlaps"] = [==[E:overlaps([F]) -> N x M qd.Matrix of |<e_i|f_j>|^2 (F defaults to E).]==],
  ["mean_dm"] = [==[E:mean_dm() -> the average state (1/N) sum_k |e_k><e_k|.]==],
  ["save_npy"] = [==[obj:save_npy(path): write a numpy .npy file (see help(qd.load_npy) for shapes).]==],
  ["free"] = [==[obj:free(): release the buffer now (also on `local x <close> = ...` and GC);
  using a freed object is a clean error.]==],
  ["normalize"] = [==[s:normalize() -> s divided by its norm.]==],
  ["inner"] = [==[s:inner(t) -> re, im of <s|t>.]==],
  ["amp"] = [==[s:amp(i) or s:amp("0110") -> re, im of an amplitude (i 1-based basis index).]==],
}

local function wrap(text)
  return text
end

function M.make(qd, core)
  -- map values to names so help(qd.state) finds "qd.state"
  local byvalue = {}
  for k, v in pairs(qd) do
    if docs["qd." .. k] and (type(v) == "function" or type(v) == "table") then
      byvalue[v] = "qd." .. k
    end
  end
  byvalue[qd.state.from] = "qd.state.from"
  byvalue[qd.ensemble.haar] = "qd.ensemble.haar"
  byvalue[qd.ensemble.from] = "qd.ensemble.from"
  local gates = core.gates()

  local function lookup(x)
    if type(x) == "string" then
      if docs[x] then return docs[x] end
      local method = x:match("[:%.]([%w_]+)$") or x
      if docs[method] then return docs[method] end
      if gates[method] then
        local g = gates[method]
        local qs, ps = {}, {}
        for i = 1, g.qubits do qs[i] = "q" .. (i - 1) end
        for i = 1, g.params do ps[i] = "theta" .. (g.params > 1 and i or "") end
        local args = table.concat(qs, ", ") .. (g.params > 0 and (", " .. table.concat(ps, ", ")) or "")
        return string.format("obj:%s(%s) -> obj\n  %s\n  On an Ensemble an angle may be a qd.Vector of per-member angles.",
                             method, args, g.doc)
      end
      return nil
    end
    local name = byvalue[x]
    if name then return docs[name] end
    local t = qd.type(x)
    if docs[t] then
      local mt = getmetatable(x)
      local names = {}
      if type(mt) == "table" and type(mt.methods) == "table" then
        for k in pairs(mt.methods) do names[#names + 1] = k end
      end
      table.sort(names)
      return docs[t] .. "\n  methods: " .. table.concat(names, " ")
    end
    return nil
  end

  return function(x)
    if x == nil then
      print([==[qd — quantum generative modelling in Lua. Objects: qd.State, qd.DensityMatrix,
qd.Ensemble, qd.Vector, qd.Matrix, qd.Rng. Try help(qd.state), help(qd.ensemble),
help(qd.load_npy), help("measure"), help("rx"), or help(obj) on any object.
Conventions: qubit 0 is the most significant bit; rotations exp(-i theta P / 2);
collections are 1-based (E[1], v[1]), qubits 0-based.]==])
      return
    end
    local text = lookup(x)
    if not text then
      print("no documentation for " .. tostring(x))
    else
      print(wrap(text))
    end
  end
end

return M
