-- qd.help — one-paragraph docs for functions, types and methods. help(x) prints the doc of
-- x: a qd function or constructor (help(qd.state)), an object (help(s) documents its type
-- and lists its methods), or a name ("qd.State:measure", "rx").
local M = {}

local docs = {
  ["qd"] = [==[qd: quantum generative modelling in Lua, computed in C. Objects (qd.State, qd.DensityMatrix,
  qd.Ensemble, qd.Circuit, qd.PauliSum, qd.Channel, qd.Schedule, qd.Vector, qd.Matrix,
  qd.Rng) are made by the constructors below; help(obj) or help("qd.State") lists a type's
  methods. Conventions: qubit 0 is the most significant bit; rotations exp(-i theta P/2);
  collections 1-based, qubits 0-based; randomness only from qd.Rng objects (default: the
  run's generator, qd --seed). Full reference: docs/reference.md, docs/api.md.]==],
  ["qd.state"] = [==[qd.state(n [, bits]) -> qd.State
  The n-qubit basis state |0...0>, or |bits> for a bitstring such as "0110" (qubit 0 is the
  leftmost character, the most significant bit of the basis index).
  qd.state.from(amps [, {normalize=}]): a state from a table of amplitudes (numbers or {re, im}
  pairs) or a qd.Vector, length 2^n (help(qd.state.from)).]==],
  ["qd.state.from"] = [==[qd.state.from(amps [, {normalize=}]) -> qd.State
  amps: table of 2^n numbers or {re, im} pairs, or a qd.Vector. Checked: finite and
  normalised (|norm^2 - 1| <= 1e-8) unless normalize = true (scaled to norm 1) or
  normalize = false (taken as given: for gradient vectors, not states).]==],
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
  ["qd.threads"] = [==[qd.threads() -> the number of threads core loops use (see qd.set_threads, qd --threads).]==],
  ["qd.simd"] = [==[qd.simd() -> the kernel set in use: "portable", "avx2" or "avx512" (the best this CPU runs unless QD_SIMD forces one). Results do not depend on it.]==],
  ["qd.simd_sets"] = [==[qd.simd_sets() -> runnable, built, cpu: the kernel sets this CPU runs (best last), the sets built into qd, and the CPU's vector ISA.]==],
  ["qd.set_simd"] = [==[qd.set_simd(name): switch the kernel set ("portable", "avx2", "avx512"); an error if this CPU cannot run it. For tests and benchmarks: results are the same with every set.]==],
  ["qd.blas_info"] = [==[qd.blas_info() -> a string naming the BLAS library, its version and the CPU kernel in use.]==],
  ["qd.clock"] = [==[qd.clock() -> seconds from a monotonic clock, for timing and progress only (never for randomness).]==],
  ["qd.mpi"] = [==[qd.mpi: qd on several processes (Open MPI; built with `make MPI=1`, run with
  `mpirun -n P qd script.lua`). Every rank runs the script; rank 0 alone prints and writes run
  records. Without MPI the same module has one rank (rank 0, size 1; collectives return their
  argument), so a script runs either way. Fields rank, size, enabled, library; functions
  barrier, allreduce, bcast, gather, allgather, send, recv, iprobe, serialise, deserialise,
  is_root, share, scatter, allgather_ensemble (ensembles in blocks), overlaps, mmd, wasserstein, grad
  (losses and circuit gradients over ensembles in blocks, the one-rank bits), dstate (a state
  vector split over the ranks), scratch_dir. Reductions add in rank
  order on rank 0 and broadcast: the same bits whatever MPI does (docs/scaling.md).]==],
  ["qd.mpi.rank"] = [==[qd.mpi.rank: this process's rank, 0..size-1 (0 without MPI).]==],
  ["qd.mpi.size"] = [==[qd.mpi.size: the number of ranks (1 without MPI or without mpirun).]==],
  ["qd.mpi.enabled"] = [==[qd.mpi.enabled: true in the MPI build (make MPI=1), false otherwise.]==],
  ["qd.mpi.library"] = [==[qd.mpi.library: the MPI library's version line ("none" without MPI).]==],
  ["qd.mpi.is_root"] = [==[qd.mpi.is_root() -> true on rank 0.]==],
  ["qd.mpi.barrier"] = [==[qd.mpi.barrier(): waits until every rank has called it.]==],
  ["qd.mpi.allreduce"] = [==[qd.mpi.allreduce(x [, op = "sum"]) -> the reduction over all ranks, on every rank
  x: a number, a table of numbers, a qd.Vector or a qd.Matrix (complex: "sum" only) of the
  same shape on every rank (checked: a mismatch is an error on every rank, not a hang);
  op "sum", "max", "min" or "prod". Added in rank order 0, 1, ..., P-1: bit-reproducible.]==],
  ["qd.mpi.bcast"] = [==[qd.mpi.bcast(v [, root = 0]) -> root's v on every rank (the others' v is ignored)
  v: nil, booleans, numbers (exact), strings, tables of these (no cycles), qd.Vector, qd.Matrix.]==],
  ["qd.mpi.gather"] = [==[qd.mpi.gather(v [, root = 0]) -> {v of rank 0, ..., v of rank P-1} on root, nil on the others]==],
  ["qd.mpi.allgather"] = [==[qd.mpi.allgather(v) -> {v of rank 0, ..., v of rank P-1} on every rank]==],
  ["qd.mpi.send"] = [==[qd.mpi.send(v, dest [, tag = 0]): sends a Lua value (as qd.mpi.bcast's) to rank dest (tag 0..32767).]==],
  ["qd.mpi.recv"] = [==[qd.mpi.recv([src = any [, tag = any]]) -> v, src, tag: waits for a value from qd.mpi.send (-1: any).]==],
  ["qd.mpi.iprobe"] = [==[qd.mpi.iprobe([src [, tag]]) -> true if a message is waiting (does not wait).]==],
  ["qd.mpi.serialise"] = [==[qd.mpi.serialise(v) -> string: the binary form values travel in (numbers exact; tables, qd.Vector, qd.Matrix).]==],
  ["qd.mpi.deserialise"] = [==[qd.mpi.deserialise(s) -> v: the inverse of qd.mpi.serialise.]==],
  ["qd.mpi.share"] = [==[qd.mpi.share(N [, rank [, size]]) -> first, count: the members 1..N a rank holds in
  contiguous blocks (the first N mod P ranks one more).]==],
  ["qd.mpi.scatter"] = [==[qd.mpi.scatter(E) -> part, first: this rank's block of an ensemble every rank holds
  (nil when it holds no member) and the global index of its first member. A circuit with
  measurements or channels run on the block with c:run(part, params, {rng = r, first = first})
  (also c:forward, c:grad) draws member k's outcomes from the substream of its global index.]==],
  ["qd.mpi.allgather_ensemble"] = [==[qd.mpi.allgather_ensemble(part) -> the whole qd.Ensemble on every rank, the blocks
  in rank order (part nil: this rank holds none). Circuits run on the blocks (with `first` when
  they measure or have channels), gathered, equal the one-rank run bit for bit.]==],
  ["qd.mpi.overlaps"] = [==[qd.mpi.overlaps(A [, B]) -> this rank's rows of |<a_i|b_j>|^2: a #A x #B_whole qd.Matrix
  (nil on a rank without A members). A, B: this rank's blocks (qd.Ensemble or nil); B omitted:
  B = A. The B blocks travel round the ring of ranks (P - 1 MPI_Sendrecv steps); every entry is
  the one-rank E:overlaps bits (2^n <= 1024 and N M <= 2^22; beyond, zgemm's, to rounding).]==],
  ["qd.mpi.mmd"] = [==[qd.mpi.mmd(A, B [, {grad = false, method = "auto"}]) -> value [, G_A, G_B, sharded]
  qd.loss.mmd of the whole ensembles whose blocks A, B (nil: none here) the ranks hold: the value
  on every rank, G_A/G_B for this rank's members, the one-rank bits. sharded = true when the work
  was split (the average-state form with 2^n <= 32 on an FMA CPU: the lane sums pass from rank
  to rank in rank order, each rank computes its members' gradient); otherwise the blocks are
  gathered and the one-rank loss run on every rank.]==],
  ["qd.mpi.wasserstein"] = [==[qd.mpi.wasserstein(A, B [, opts]) -> value, plan [, G_A, G_B]
  qd.loss.wasserstein of the whole ensembles whose blocks A, B (nil: none here) the ranks hold:
  the blocks gathered, the one-rank loss on every rank (the same bits, no speed-up: the
  assignment needs the whole cost matrix), G_A/G_B for this rank's members. opts as
  qd.loss.wasserstein's.]==],
  ["qd.mpi.grad"] = [==[qd.mpi.grad(c, X, params, loss_fn [, {rng=}]) -> L, dL/dtheta, output [, outcomes]
  c:grad on an ensemble in blocks: X is this rank's block (every rank holds a member), the run
  draws from the members' global substreams, loss_fn(out) returns the whole loss and G for the
  block (e.g. qd.mpi.mmd(out, targets_block, {grad = true})), the backward pass runs on the
  block and the per-member gradient terms are added in the one-rank order: L, dL/dtheta and the
  outputs are the bits of c:grad on the whole ensemble. Needs the lane backward pass (at most 10
  qubits, gates rx/ry/rz/1-qubit/cz/cx before the measurements, an FMA CPU).]==],
  ["qd.mpi.scratch_dir"] = [==[qd.mpi.scratch_dir() -> a private directory of this rank, removed at exit
  (ranks other than 0 write their run records there; a sweep's points may too).]==],
  ["qd.mpi.dstate"] = [==[qd.mpi.dstate(n) -> qd.DistState: |0..0> on n qubits split over the ranks
  (every rank calls it; P a power of two, n - log2 P >= 3). QuEST's scheme: qubits 0..log2(P)-1
  index the rank. help("qd.DistState") lists its methods.]==],
  ["qd.DistState"] = [==[qd.DistState: a state vector split over P = 2^k MPI ranks (qd.mpi.dstate(n)); each
  rank holds 2^(n-k) amplitudes, qubits 0..k-1 (the most significant) index the rank. Gate
  methods as qd.State's (d:h(q), d:rx(q, theta), d:cx(c, t), ...; every rank calls them):
  gates on local qubits run the ordinary kernels, diagonal gates need no message, other gates
  on a rank qubit swap it with a free local qubit (MPI_Sendrecv of half the part), apply, swap
  back. d.n, d.local_qubits; d:prob1, d:expect_z, d:probs, d:state, d:sample, d:inner,
  d:mmd_bits, d:stats, d:free. Results agree with qd.State to rounding (1e-12).]==],
  ["qd.DistState:prob1"] = [==[d:prob1(q) -> the probability that qubit q reads 1 (every rank).]==],
  ["qd.DistState:expect_z"] = [==[d:expect_z({q1, q2, ...}) -> <Z_q1 Z_q2 ...> (every rank).]==],
  ["qd.DistState:probs"] = [==[d:probs() -> qd.Vector of the 2^n probabilities on rank 0, nil on the others.]==],
  ["qd.DistState:state"] = [==[d:state() -> the whole qd.State on rank 0 (gathered), nil on the others.]==],
  ["qd.DistState:sample"] = [==[d:sample([rng]) -> basis index 0..2^n-1 of measuring every qubit, the same on
  every rank (each rank draws one uniform from rng, which must be in the same state on every
  rank — the run's generator is).]==],
  ["qd.DistState:inner"] = [==[d:inner(e) -> re, im of <d|e> (two distributed states of the same size).]==],
  ["qd.DistState:mmd_bits"] = [==[d:mmd_bits(q, {sigma=}) -> MMD^2 between d's Born distribution and q (a qd.Vector of
  2^n probabilities; each rank reads its part) through the Walsh-Hadamard (Pauli-Z) expansion
  of qd.loss.mmd_bits; the transform's rank bits are whole-part exchanges.]==],
  ["qd.DistState:stats"] = [==[d:stats([reset]) -> {compute =, exchange = seconds, messages =, bytes =} of this
  rank since the last reset (exchange includes packing).]==],
  ["qd.DistState:free"] = [==[d:free(): releases the amplitudes now (also <close> and the GC); idempotent.]==],
  ["qd.sweep"] = [==[qd.sweep{grid = {key = {values...}, ...} | points = {cfg...}, run = function(cfg, k) ... end
  [, order = {keys}] [, seed = 1] [, out = dir] [, name = "sweep"] [, record = true] [, quiet = true]}
  -> results {{cfg =, result =}, ...} in point order (on every rank) [, record dir]
  Independent runs over the grid's points (every combination; the first key of `order`, or
  of the sorted keys, the slowest), handed out to the MPI ranks dynamically (rank 0 keeps the
  queue); without MPI one after another. Before point k the run's generator is reseeded from
  substream k of `seed`, so results are the same on 1 or P ranks, bit for bit. With out, name
  or record: one run record (run.json: results, points per rank, seconds per point).]==],
  ["qd.save_stack"] = [==[qd.save_stack(path, {x1, x2, ...})
  One .npy of equal-shaped objects of one kind: (T, 2^n) states, (T, 2^n, 2^n) density
  matrices (rho[i, j] at [t, i, j], numpy's order), (T, N, 2^n) ensembles.]==],
  ["qd.save_ensembles"] = [==[qd.save_ensembles(path, {E1, E2, ...})
  Writes T ensembles of equal shape to one .npy file of shape (T, N, 2^n), the layout of
  the QuDDPM reference data (one ensemble per diffusion step); read it back with
  qd.load_npy(path, "ensembles"), which returns a table of T qd.Ensemble.]==],
  ["qd.type"] = [==[qd.type(x) -> "qd.State", "qd.Ensemble", ... for qd objects, type(x) otherwise.]==],
  ["qd.help"] = [==[help(x): print the documentation of x (a function, an object, or a name).]==],
  ["qd.pretty.pretty"] = [==[qd.pretty.pretty(v [, opts]) -> string: the function qd.pretty(v [, opts]) calls.]==],
  ["qd.version"] = [==[qd.version: the qd version string (also `qd --version`).]==],
  ["qd.max_qubits"] = [==[qd.max_qubits: the largest qubit count any object may have (60); memory is the real limit.]==],
  ["qd.allclose"] = [==[qd.allclose(a, b [, {rtol=1e-9, atol=1e-12}]) -> boolean
  True when two States, DensityMatrices, Ensembles, Vectors or Matrices of the same shape
  agree entrywise: |a_i - b_i| <= atol + rtol |b_i| (false for different shapes or types).
  a == b on two qd objects of one type is allclose with these defaults.]==],
  ["qd.expect"] = [==[qd.expect(O, obj) -> re, im | qd.Vector
  <psi|O|psi> of a State, Tr(O rho) of a DensityMatrix, or one complex value per member of an
  Ensemble (a complex qd.Vector), for a 2^n x 2^n qd.Matrix O; with a qd.PauliSum or a Pauli
  string O it is obj:expect(O, ...).]==],
  ["qd.noise"] = [==[qd.noise: noise models for circuits. qd.noise.apply(c, model) (= c:with_noise(model)).]==],
  ["qd.noise.apply"] = [==[qd.noise.apply(c, model) -> a new circuit: see help("qd.Circuit:with_noise").]==],
  ["qd.plot"] = [==[qd.plot: pictures drawn by gnuplot (Debian gnuplot-nox): lines, hist, heatmap, probs,
  bloch, images, circuit (= c:plot()), run (a run record's figures; also `qd plot RUNDIR`).
  Every plot takes {out = "f.png" | "f.svg" | "f.pdf", title=, xlabel=, ylabel=, width=,
  height=}; the file is written atomically and its path returned. Without out: a text
  rendering (gnuplot's dumb terminal, width x height characters) printed (print = false:
  returned instead). No gnuplot: an error naming gnuplot-nox; --sandbox: an error.]==],
  ["qd.plot.available"] = [==[qd.plot.available() -> true | false, message (gnuplot missing, or --sandbox).]==],
  ["qd.plot.lines"] = [==[qd.plot.lines{[x,] y1, y2, ..., labels = {...}, logy=, logx=, key=, style=} -> out | nil | text
  Curves of tables of numbers or qd.Vectors: one array is y against 1..n, more are x then
  the ys (same length; NaN breaks a curve). style "lines" (default), "points", "linespoints";
  key = false hides the legend.]==],
  ["qd.plot.hist"] = [==[qd.plot.hist(values [, {bins = 20, range = {lo, hi}}]) -> out | nil | text: a histogram of numbers.]==],
  ["qd.plot.heatmap"] = [==[qd.plot.heatmap(M [, {phase = true}]) -> out | nil | text
  A real qd.Matrix (or table of rows) as colours, row 1 at the top; a complex qd.Matrix or a
  qd.DensityMatrix as |M_ij| beside arg(M_ij) (phase = false: |M_ij| only; the phase of a
  zero entry is left blank).]==],
  ["qd.plot.probs"] = [==[qd.plot.probs(x [, {qubits = {...}}]) -> out | nil | text
  The basis-state probabilities of a State or DensityMatrix (of the listed qubits), or of a
  vector of 2^k probabilities, as bars labelled with kets |00>, |01>, ... (qubit 0 leftmost).]==],
  ["qd.plot.bloch"] = [==[qd.plot.bloch(x [, {qubit = 0, labels = {...}, trajectories = false, panels = false}]) -> out | nil | text
  Points (<X>, <Y>, <Z>) of the chosen qubit on the Bloch sphere: x an Ensemble, a State or
  DensityMatrix, a list of Ensembles (one colour each: generated vs target), a list of
  states, or a list of lists of states / density matrices (one colour each). trajectories = true: the list is a path in time, one curve per member;
  panels = true: one sphere per set, side by side (snapshots of a generation).]==],
  ["qd.plot.images"] = [==[qd.plot.images(grid [, {cols=, titles = {...}}]) -> out | nil | text: greyscale images (real
  qd.Matrix or tables of rows, row 1 at the top) in a grid of cols columns.]==],
  ["qd.plot.circuit"] = [==[qd.plot.circuit(c [, opts]) -> out | nil | text: the circuit diagram as a picture (= c:plot(opts)).]==],
  ["qd.plot.run"] = [==[qd.plot.run(dir [, {out = DIR, format = "png"}]) -> written files, skipped notes
  The standard figures of a run record into dir/figures: loss.png (loss per epoch of every
  diffusion step), metrics.png (run.json's per-step lists), forward.png, bloch.png and
  trajectory.png (1-qubit runs: the noising process, generated vs target, the generation
  trajectory), history.png and density_target/generated.png (density-matrix records: loss
  and 1 - F per iteration; |rho| and phase), bloch.png for 1-qubit ensembles of density
  matrices (d^2 x N stacks: MSQuDDPM); other files are named as skipped. Also `qd plot RUNDIR` and the --plot
  option of every example.]==],
  ["qd.Circuit:plot"] = [==[c:plot([opts]) -> out | nil | text: the circuit diagram drawn by gnuplot (boxes, control dots,
  target circles); opts as for qd.plot (help("qd.plot")). c:draw() is the text form.]==],
  ["qd.pretty"] = [==[qd.pretty(v [, {depth = 3, items = 20, width = 100}]) -> string
  Readable text for any value, as the prompt shows results: tables nested (array part, then
  the other keys sorted), at most `items` entries per table and `depth` levels, on one line
  when that fits in `width` characters; qd objects by their summaries; cycles as <cycle>.]==],

  -- random states, schedules, QuDDPM scrambling, data sets (docs/api.md has the formulas)
  ["qd.random"] = [==[qd.random: random unitaries, states and density matrices. qd.random.unitary(n, rng),
  .state(n, rng), .ensemble(n, N, rng), .dm(n, rng, {measure=, rank=}), .mixture(n, k, rng),
  .circuit(n, depth, rng), .circuit_states(n, N, depth, rng). The rng is optional (run's generator).]==],
  ["qd.random.state"] = [==[qd.random.state(n [, rng]) -> qd.State: the same function as qd.haar_state.]==],
  ["qd.random.ensemble"] = [==[qd.random.ensemble(n, N [, rng]) -> qd.Ensemble: the same function as qd.ensemble.haar.]==],
  ["qd.random.unitary"] = [==[qd.random.unitary(n [, rng]) -> 2^n x 2^n complex qd.Matrix, Haar-random
  (QR of a complex Ginibre matrix with the phases of R's diagonal moved into Q; n <= 12).]==],
  ["qd.random.dm"] = [==[qd.random.dm(n [, rng] [, {measure = "hs" | "bures", rank = k}]) -> qd.DensityMatrix
  "hs": G G^H / Tr with G a 2^n x k Ginibre matrix (k = 2^n: Hilbert-Schmidt measure, smaller k:
  induced measure of rank k). "bures": (I+U) G G^H (I+U)^H / Tr with U Haar.]==],
  ["qd.random.mixture"] = [==[qd.random.mixture(n, k [, rng] [, {weights = {...}}]) -> rho, weights
  rho = sum_i w_i |v_i><v_i| over k orthonormal Haar vectors (spectrum exactly w); w given or
  uniform on the simplex (Dirichlet(1,...,1)), returned as a qd.Vector.]==],
  ["qd.random.circuit"] = [==[qd.random.circuit(n, depth [, rng]) -> qd.State
  A random brickwork circuit on |0..0>: layer l puts Haar 4x4 unitaries on qubit pairs
  (i, i+1), i = l mod 2, l mod 2 + 2, ... (n = 1: a Haar 2x2 unitary per layer).]==],
  ["qd.random.circuit_states"] = [==[qd.random.circuit_states(n, N, depth [, rng]) -> qd.Ensemble
  N random brickwork-circuit states; member k from substream k (independent of N).]==],

  ["qd.schedule"] = [==[qd.schedule: noise schedules (qd.Schedule), T values v_1..v_T.
  linear{T=, from=, to=}, quadratic{T=, from=, to=} or {T=, scale=}, geometric{T=, from=, to=},
  sq_cosine{T=, from=, to=}, cosine{T=, s=0.008, max_beta=0.999}, piecewise{s1, s2, ...},
  from{v1, v2, ...} / from(s:totable()). Every constructor takes clip = {lo, hi}.]==],
  ["qd.schedule.linear"] = [==[qd.schedule.linear{T=, from=, to= [, clip=]} -> qd.Schedule
  v_t = from + (t-1)(to-from)/(T-1), exactly numpy.linspace(from, to, T).]==],
  ["qd.schedule.quadratic"] = [==[qd.schedule.quadratic{T=, from=, to=} | {T=, scale=c} -> qd.Schedule
  v_t = (sqrt(from) + (t-1)(sqrt(to)-sqrt(from))/(T-1))^2; scale = c gives v_t = c t^2.]==],
  ["qd.schedule.geometric"] = [==[qd.schedule.geometric{T=, from=, to=} -> qd.Schedule
  v_t = from (to/from)^((t-1)/(T-1)) (numpy.geomspace); from, to > 0.]==],
  ["qd.schedule.sq_cosine"] = [==[qd.schedule.sq_cosine{T=, from=, to=} -> qd.Schedule
  v_t = from + (to-from) sin^2(pi t / (2T)), a cosine-squared ramp ending at to.]==],
  ["qd.schedule.cosine"] = [==[qd.schedule.cosine{T= [, s=0.008, max_beta=0.999]} -> qd.Schedule of betas
  Nichol-Dhariwal: abar(t) = f(t)/f(0), f(t) = cos^2(pi/2 (t/T + s)/(1 + s)),
  beta_t = min(1 - abar(t)/abar(t-1), max_beta).]==],
  ["qd.schedule.piecewise"] = [==[qd.schedule.piecewise{s1, s2, ...} -> the concatenation (parts are
  schedules or arrays of numbers).]==],
  ["qd.schedule.from"] = [==[qd.schedule.from{v1, v2, ... [, clip=]} | from(qd.Vector) | from(tbl) | from(s)
  Explicit values; a table with `values` (from s:totable(), also after JSON) rebuilds the
  same schedule bitwise with the rest of the table as its spec.]==],
  ["qd.Schedule"] = [==[qd.Schedule: T per-step noise strengths. s[t] (t = 1..T), #s, s.T, s.kind,
  s:beta(t) = v_t, s:alpha(t) = 1 - v_t, s:alpha_bar(t) = prod_{u<=t}(1 - v_u) (t = 0..T),
  s:values() (qd.Vector), s:clip(lo, hi) (new schedule), s:totable() (plain data for run
  records / JSON; qd.schedule.from(s:totable()) == s), s1 == s2 (same values).]==],
  ["qd.Schedule:alpha_bar"] = [==[s:alpha_bar(t) -> prod_{u<=t} (1 - v_u), t = 0..T (1 at t = 0).]==],
  ["qd.Schedule:beta"] = [==[s:beta(t) -> v_t, the schedule's value at step t (1..T).]==],
  ["qd.Schedule:alpha"] = [==[s:alpha(t) -> 1 - v_t.]==],
  ["qd.Schedule:clip"] = [==[s:clip(lo, hi) -> a new qd.Schedule with values clamped into [lo, hi].]==],

  ["qd.diffusion"] = [==[qd.diffusion: the QuDDPM forward (scrambling) process. scramble(E, h, rng),
  forward(E0, schedule, rng, {mode=}), save(path, sets).]==],
  ["qd.diffusion.scramble"] = [==[qd.diffusion.scramble(E, h [, rng]) -> E
  One QuDDPM forward step on every member, in place: W = [prod_{i<j} RZZ_ij(g/(2 sqrt n))] .
  (x)_i RZ(phi3) RY(phi2) RZ(phi1), phi ~ U[-pi/8, pi/8) h, g ~ U[0.4, 0.6) h per member.
  One C call; member k does not depend on N or the thread count.]==],
  ["qd.diffusion.save"] = [==[qd.diffusion.save(path, sets)
  The same function as qd.save_ensembles: writes the list {S_0, ..., S_T} that
  qd.diffusion.forward returns as one .npy of shape (T+1, N, 2^n).]==],
  ["qd.diffusion.forward"] = [==[qd.diffusion.forward(E0, schedule [, rng] [, {mode = "marginal"}]) -> {S_0, ..., S_T}
  sets[t + 1] = S_t. schedule: qd.Schedule, qd.Vector or table of h_1..h_T. "marginal": S_t is
  t fresh steps on E0 for every t (the reference code); "trajectory": S_t = step t of S_{t-1}.
  qd.diffusion.save(path, sets) writes one .npy of shape (T+1, N, 2^n).]==],

  ["qd.data"] = [==[qd.data: seeded data sets. Ensembles: clustered(n, N), circle(N), noise(N),
  random_pure(n, N); random_mixed(n) (DensityMatrix); Born-machine distributions (qd.Vector
  over 2^n, qubit 0 = most significant bit): bars_and_stripes(r, c), ghz(n), gaussian_mixture(n).]==],
  ["qd.data.clustered"] = [==[qd.data.clustered(n, N [, rng] [, {eps=}]) -> qd.Ensemble
  psi ∝ |0..0> + eps sum_{j != 0} c_j |j>, c_j = x + iy, x, y ~ N(0,1); eps 0.08 (n = 1) / 0.06.]==],
  ["qd.data.circle"] = [==[qd.data.circle(N [, rng] [, {n = 1, range = {0, 2 pi}}]) -> E, angles
  cos(phi)|0> + sin(phi)|1> on each qubit, phi ~ U[range).]==],
  ["qd.data.noise"] = [==[qd.data.noise(N [, rng] [, {p = 0.8, eps_max = pi/3}]) -> E, is_xx, eps
  psi0 = (sqrt(.1) e^{.8i}, sqrt(.55) e^{1.7i}, 0, sqrt(.35) e^{2.4i}); with probability p
  exp(-i eps X⊗X), else exp(-i eps Z⊗Z), eps ~ U[-eps_max, eps_max).]==],
  ["qd.data.random_pure"] = [==[qd.data.random_pure(n, N [, rng]) -> N Haar-random states.]==],
  ["qd.data.random_mixed"] = [==[qd.data.random_mixed(n [, rng] [, {measure = "hs" | "bures" | "mixture", rank=}]) -> qd.DensityMatrix]==],
  ["qd.data.bars_and_stripes"] = [==[qd.data.bars_and_stripes(rows, cols) -> qd.Vector, patterns
  Uniform over the 2^rows + 2^cols - 2 bars-and-stripes images; pixel (r, c) is qubit r*cols + c.]==],
  ["qd.data.ghz"] = [==[qd.data.ghz(n [, {weight = 0.5, flip = 0}]) -> qd.Vector
  weight on 0..0, 1 - weight on 1..1, then each bit flipped with probability flip.]==],
  ["qd.data.gaussian_mixture"] = [==[qd.data.gaussian_mixture(n [, {means=, sigmas=, weights=}]) -> qd.Vector
  p(x) ∝ sum_k w_k exp(-(x - mu_k)^2 / (2 sigma_k^2)) over x = 0..2^n-1; defaults
  mu = {2/7, 5/7} 2^n, sigma = 2^n/8.]==],

  ["qd.State"] = [==[qd.State: a pure state of n qubits (2^n amplitudes, qubit 0 = most
  significant bit). s.n, s.dim, #s (= 2^n). Gates: s:h(0), s:rx(1, theta), s:cx(0, 1), ...
  (qubits first, then angles; each returns s). Printing shows the ket expansion.]==],
  ["qd.DensityMatrix"] = [==[qd.DensityMatrix: a mixed state, 2^n x 2^n column-major. Gates act as
  rho -> U rho U^dagger. rho:get(i, j), rho:matrix(), rho:trace(), rho:purity(),
  rho:entropy(), rho:eigenvalues(), measurement and partial trace as for states.]==],
  ["qd.Ensemble"] = [==[qd.Ensemble: N pure states of n qubits in one buffer. E[k] (copy, 1-based),
  E:set(k, s), #E, E.n. Gates on all members at once; an angle may be a qd.Vector (or
  table) of N per-member angles. E:overlaps(F) (N x M matrix of |<a|b>|^2),
  E:fidelities(s), E:mean_dm(), E:expect(P, qubits) (qd.Vector), E:probs() (matrix,
  one column per member), E:measure(qubits, rng) (each member its own outcome), E:embed(na).]==],
  ["qd.Vector"] = [==[qd.Vector: a dense real or complex vector (qd.vector, results of probs, norms, ...).
  v[i] reads (nil past the end) and v[i] = x writes entry i (1-based); #v the length;
  complex entries go in and come out of v[i] as {re, im}, of v:get(i) as re, im.]==],
  ["qd.Matrix"] = [==[qd.Matrix: a dense real or complex column-major matrix (qd.matrix, overlaps, unitaries, ...).
  #M is the number of rows; entries are read and written with M:get(i, j), M:set(i, j, x)
  (1-based); M:shape() -> rows, cols.]==],
  ["qd.Rng"] = [==[qd.Rng: a counter-based, splittable generator (qd.rng(seed), qd.run_rng()). Every random
  function takes one as its optional rng argument; printing shows the seed and draws made.]==],

  -- losses (lua_loss.c, loss.c, transport.c) and optimizers (optim.lua); docs/api.md "Losses"
  ["qd.loss"] = [==[qd.loss: losses with gradients w.r.t. their inputs ({grad=true}).
  Ensembles: mmd, wasserstein, sinkhorn. Born machines: mmd_bits, mmd_bits_samples,
  mmd_bits_orders, kl, cross_entropy, global_fidelity, local_fidelity; the Born-rule chain
  rule born_vjp, born_shift. States: infidelity,
  trace_distance, hilbert_schmidt, superfidelity, mse. Gradients are dL/d(conj x) shaped like
  x (dL = 2 Re sum conj(G) dx; density matrices: dL = 2 Tr(G drho)); dL/dp (qd.Vector) for
  probability vectors.]==],
  ["qd.loss.mmd"] = [==[qd.loss.mmd(A, B [, {grad=, method="auto"|"gram"|"dm"}]) -> value [, G_A, G_B]
  Fidelity-kernel MMD (V-statistic, diagonal included): mean|<a|a'>|^2 + mean|<b|b'>|^2
  - 2 mean|<a|b>|^2 = Tr[(rhoA - rhoB)^2]. A, B: qd.Ensemble (or qd.State = 1 member).
  "gram" uses overlap matrices, "dm" the average states; "auto" picks the cheaper.]==],
  ["qd.loss.wasserstein"] = [==[qd.loss.wasserstein(A, B [, {grad=, a=, b=, warm=, plan=true}]) -> value, plan [, G_A, G_B]
  Exact OT with cost 1 - |<a_i|b_j>|^2, uniform weights (or relative weights a, b);
  plan: N x M qd.Matrix (total mass 1); plan = false returns nil in its place (same value
  and gradients, no N x M matrix). Equal sizes: assignment; otherwise network simplex.
  The gradient holds the optimal plan fixed.
  warm = S (a table kept by the caller between calls): the assignment starts from the
  column prices of the previous call (S.v, a qd.Vector of N; S.n = N; written on return;
  missing or another size: cold solve). Same optimum from any start, much faster when the
  cost changes little (training). Used only for equal sizes without weights; otherwise S
  is ignored.]==],
  ["qd.loss.sinkhorn"] = [==[qd.loss.sinkhorn(A, B [, {eps=0.05, tol=1e-9, max_iter=10000, strict=true, grad=, a=, b=}])
  -> value, plan [, G_A, G_B]. Entropic OT (log domain): value = min <P,C> + eps KL(P||ab^T),
  gradient through the plan (envelope theorem). Raises if not converged unless strict=false.]==],
  ["qd.loss.mmd_bits"] = [==[qd.loss.mmd_bits(p, q, {sigma=s | {s1, s2, ...}, method="exact"|"pauli", grad=})
  -> value [, dL/dp]. MMD^2 between distributions on bitstrings with the Gaussian kernel
  exp(-hamming(x,y)/(2 sigma)) (mean over several sigmas). "pauli": via the Pauli-Z expansion.]==],
  ["qd.loss.mmd_bits_samples"] = [==[qd.loss.mmd_bits_samples(x, y, {sigma=}) -> unbiased estimate of MMD^2
  x, y: lists of basis indices (0-based) or bitstrings, or counts tables from obj:sample().]==],
  ["qd.loss.mmd_bits_orders"] = [==[qd.loss.mmd_bits_orders(p, q, {sigma=}) -> {c_0, ..., c_n}: MMD^2 split by
  the weight |A| of the Pauli-Z strings (entry k+1 = weight k).]==],
  ["qd.loss.kl"] = [==[qd.loss.kl(p, q [, {eps=1e-12, grad=}]) -> KL(q || p) = sum q log(q / max(p, eps)) [, dL/dp]
  p the model, q the target; dL/dp = -q/p (0 where p is clipped).]==],
  ["qd.loss.cross_entropy"] = [==[qd.loss.cross_entropy(p, q [, {eps=, grad=}]) -> -sum q log max(p, eps) [, dL/dp]]==],
  ["qd.loss.global_fidelity"] = [==[qd.loss.global_fidelity(psi, target [, {grad=}]) -> 1 - |<t|psi>|^2 [, G]
  target: a qd.State, or a probability vector q (|t> = sum sqrt(q_x)|x>).]==],
  ["qd.loss.local_fidelity"] = [==[qd.loss.local_fidelity(phi [, {grad=}]) -> 1 - (1/n) sum_j P(qubit j = 0) [, G]
  For a QCBM: phi = U(theta)^dagger |q> (arXiv 2305.02881).]==],
  ["qd.loss.born_vjp"] = [==[qd.loss.born_vjp(psi, dLdp) -> G (qd.State): G = dL/d conj(psi) = dLdp .* psi
  for a loss of the probabilities p = |psi|^2 (dLdp: qd.Vector or table of 2^n numbers, e.g.
  the gradient of mmd_bits or kl). c:grad(x, theta, function(o) local l, g =
  qd.loss.kl(o:probs(), q, {grad=true}); return l, qd.loss.born_vjp(o, g) end) trains a Born machine.]==],
  ["qd.loss.born_shift"] = [==[qd.loss.born_shift(dLdp, p_plus, p_minus) -> sum_x dLdp_x (p_plus_x - p_minus_x) / 2
  The parameter-shift derivative dL/dtheta of any loss of the Born probabilities along one
  rotation angle, p_plus / p_minus the probabilities at theta +- pi/2 (exact: each p_x is
  a + b cos theta + c sin theta for exp(-i theta P/2)).]==],
  ["qd.loss.infidelity"] = [==[qd.loss.infidelity(a, b [, {grad=, wrt=}]) -> 1 - F [, G_a, G_b]
  States and/or density matrices: |<a|b>|^2, <a|rho|a>, or Uhlmann (Tr sqrt(sqrt(rho) sigma sqrt(rho)))^2.
  wrt = 1 or 2 (with grad = true): only that argument's gradient (for two density matrices
  only it is computed; so for every state loss).]==],
  ["qd.loss.trace_distance"] = [==[qd.loss.trace_distance(a, b [, {grad=, wrt=}]) -> 1/2 ||rho - sigma||_1 [, G_a, G_b]]==],
  ["qd.loss.hilbert_schmidt"] = [==[qd.loss.hilbert_schmidt(a, b [, {grad=}]) -> Tr[(rho - sigma)^2] [, G_a, G_b]]==],
  ["qd.loss.superfidelity"] = [==[qd.loss.superfidelity(a, b [, {grad=}]) -> 1 - qd.superfidelity(a, b) [, G_a, G_b]]==],
  ["qd.loss.mse"] = [==[qd.loss.mse(x, y [, {grad=}]) -> mean |x_i - y_i|^2 [, G_x, G_y]
  Real vectors: dL/dx = 2(x-y)/len; complex vectors and states: Wirtinger (x-y)/len.]==],
  ["qd.superfidelity"] = [==[qd.superfidelity(a, b) -> Tr(rho sigma) + sqrt((1 - Tr rho^2)(1 - Tr sigma^2)), an upper bound of the fidelity.]==],
  ["qd.ot"] = [==[qd.ot: optimal transport on a cost qd.Matrix. exact(C [, {a=, b=}]) -> cost, plan;
  assign(C) -> cost, perm (perm[i] = column of row i); sinkhorn(C [, {eps=, tol=, max_iter=, a=, b=}])
  -> value, plan, info {iters, err, converged, cost}.]==],
  ["qd.ot.exact"] = [==[qd.ot.exact(C [, {a=, b=}]) -> cost, plan (assignment or network simplex; weights relative).]==],
  ["qd.ot.assign"] = [==[qd.ot.assign(C) -> cost, perm: minimum-cost assignment of an n x n cost matrix.]==],
  ["qd.ot.sinkhorn"] = [==[qd.ot.sinkhorn(C [, {eps=0.05, tol=1e-9, max_iter=10000, a=, b=}]) -> value, plan, info]==],
  ["qd.optim"] = [==[qd.optim: x, fx = optim.adam(feval, x, state), optim.sgd(feval, x, state);
  feval(x) -> f, grad; x a real qd.Vector (or table) updated in place. state: lr, beta1, beta2,
  eps, weight_decay (Adam); lr, momentum, dampening, nesterov, weight_decay (SGD); schedule.
  optim.schedule.{constant,step,exponential,cosine,linear}{...}, optim.lr_at(s, t);
  optim.checkpoint(v) / optim.restore(t) (JSON-safe, exact), optim.freeze(t),
  optim.save(path, v) / load(path).]==],
  ["qd.optim.adam"] = [==[qd.optim.adam(feval, x, state) -> x, fx  (PyTorch's Adam; state.t, state.m, state.v kept)]==],
  ["qd.optim.sgd"] = [==[qd.optim.sgd(feval, x, state) -> x, fx  (PyTorch's SGD with momentum / Nesterov; state.buf kept)]==],
  ["qd.optim.checkpoint"] = [==[qd.optim.checkpoint(v) -> JSON-safe copy (qd.Vector, NaN, inf, -0 tagged); qd.optim.restore undoes it exactly.]==],
  ["qd.optim.freeze"] = [==[qd.optim.freeze(t) -> t: a promise that table t and everything in it will not change
  again (a finished training step: its parameters and losses). qd.optim.checkpoint then converts
  t once and qd.json encodes it once (qd.json.freeze), so a long run's checkpoints do not
  re-encode its whole history each time. The checkpoint text is the same; a frozen table that
  is changed anyway keeps its first encoding.]==],
  ["qd.optim.lr_at"] = [==[qd.optim.lr_at(schedule, t) -> learning rate of step t (1-based).]==],
  ["qd.optim.restore"] = [==[qd.optim.restore(t) -> the value qd.optim.checkpoint(v) encoded, exactly: {__vector=}
  back to a real qd.Vector, {__float="nan"|"inf"|"-inf"|"-0"} back to the number, other numbers
  as floats except integer-valued fields t, step, steps, epoch, step_size (integers), and
  string keys of digits ("3", as JSON writes array indices) as integer keys.]==],
  ["qd.optim.save"] = [==[qd.optim.save(path, v) -> true | nil, message
  Writes qd.optim.checkpoint(v) as JSON (doubles exact, %.17g) atomically (temporary file +
  rename); read it back with qd.optim.load(path).]==],
  ["qd.optim.load"] = [==[qd.optim.load(path) -> v | nil, message
  Reads a file written by qd.optim.save and returns qd.optim.restore of its JSON.]==],
  ["qd.optim.schedule"] = [==[qd.optim.schedule: learning-rate schedules as plain data tables {kind=, lr=, ...} (saved
  with the optimizer state). constant{lr=}, step{lr=, step_size=, gamma=},
  exponential{lr=, gamma=}, cosine{lr=, T= [, lr_min=0, warmup=0]}, linear{lr=, T= [, lr_end=0]}.
  Put one in state.schedule: step t of adam/sgd then uses qd.optim.lr_at(schedule, t).]==],
  ["qd.optim.schedule.constant"] = [==[qd.optim.schedule.constant{lr=} -> schedule: lr at every step.]==],
  ["qd.optim.schedule.step"] = [==[qd.optim.schedule.step{lr=, step_size=, gamma=} -> schedule
  lr * gamma^floor((t-1)/step_size) (torch's StepLR).]==],
  ["qd.optim.schedule.exponential"] = [==[qd.optim.schedule.exponential{lr=, gamma=} -> schedule: lr * gamma^(t-1).]==],
  ["qd.optim.schedule.cosine"] = [==[qd.optim.schedule.cosine{lr=, T= [, lr_min=0, warmup=0]} -> schedule
  lr * t/warmup for t <= warmup, then lr_min + (lr - lr_min)(1 + cos(pi u))/2 with
  u = (t - warmup)/(T - warmup); lr_min from step T on.]==],
  ["qd.optim.schedule.linear"] = [==[qd.optim.schedule.linear{lr=, T= [, lr_end=0]} -> schedule
  lr + (lr_end - lr)(t-1)/(T-1) for t < T, lr_end from step T on.]==],

  -- circuits (lua_circuit.c, qasm.lua, ansatz.lua)
  ["qd.circuit"] = [==[qd.circuit(n) -> qd.Circuit
  Build gate by gate: c:rx(q, 0.5) (fixed angle), c:rx(q, "a") (named slot, shared on reuse),
  c:rx(q, {3}) (slot number 3), c:rx(q, {"a", scale=2, offset=0.1}), c:rx(q) (a new slot);
  c:add_unitary(U, {q...}), c:measure({q...} [, {discard=true}]), c:reset({q...}).
  Run: c:run(x [, params] [, {rng=, outcomes=}]) on a State, Ensemble or DensityMatrix.
  Gradients: c:grad(x, params, loss_fn), c:vjp(x, params, G), c:grad_ps, c:grad_fd.
  Also qd.circuit.from_qasm(text). See docs/api.md "qd.Circuit".]==],
  ["qd.circuit.from_qasm"] = [==[qd.circuit.from_qasm(text [, {max_ops=, fast=}]) -> qd.Circuit [, notes]
  Reads OpenQASM 2 and 3: registers (qubit indices in declaration order), all of qelib1.inc
  and Qiskit's exported gates, gate definitions (a definition of a qd gate is checked against
  it: used when it differs), opaque (refused at a call), inputs as named slots, constants and
  classical arithmetic, for loops, def subroutines, let, slices, ctrl@/negctrl@/inv@/pow(k)@,
  measure in every syntax, reset, `if` on measured bits (conditional ops: per member on
  States/Ensembles, the exact channel on DensityMatrices). Timing (delay, stretch, box) is
  ignored; notes (a list of "qasm:LINE: ..." strings) come back as a second value when
  anything was ignored or replaced. Plain statements are read by a C scanner (millions of
  gates/s; fast=false turns it off). Errors read "qasm:LINE: message" and name the construct.
  See docs/api.md "Reading OpenQASM".]==],
  ["qd.Circuit"] = [==[qd.Circuit: a parameterised circuit on c.n qubits (#c ops, c:nparams() slots,
  c.nout output qubits). Gate methods as on states, but each angle may be a number (fixed), a
  slot name, {slot [, scale=, offset=]} or omitted (new slot). help("qd.Circuit:run"),
  help("qd.Circuit:vjp"), help("qd.Circuit:forward"), help("qd.Circuit:grad"),
  help("qd.Circuit:to_qasm").]==],
  ["qd.Circuit:nparams"] = [==[c:nparams() -> the number of parameter slots (the length of the params a run takes).]==],
  ["qd.Circuit:param"] = [==[c:param(name) -> the slot number (1-based) of the named slot, created (as the next
  number) if new; c:param() -> the number of a new unnamed slot. Slots are what a gate's
  angle "name" or {i} refers to; params[i] is slot i's value.]==],
  ["qd.Circuit:param_index"] = [==[c:param_index(name) -> the slot number of a named slot, or nil if there is none
  (never creates one).]==],
  ["qd.Circuit:param_names"] = [==[c:param_names() -> {[i] = name} for the named slots (unnamed slots are absent, so
  the table may have holes: use pairs, or 1..c:nparams()).]==],
  ["qd.Circuit:channel"] = [==[c:channel(ch, qubits [, {at = k}]) -> c
  Noise: the qd.Channel ch (on as many qubits as given) at the end, or before op k. On a
  DensityMatrix it is applied exactly (rho -> sum K rho K^dagger) and gradients pass through
  it; on States and Ensembles it is a quantum trajectory (member j picks a Kraus operator
  from its own substream; the rng option of c:run) — no gradient there.]==],
  ["qd.Circuit:with_noise"] = [==[c:with_noise{gates = ch, cx = ch2, unitary = ch3, ...} -> a new circuit
  The model's channel after every gate (per gate name, else `gates`; `unitary` after
  add_unitary ops): a channel of the gate's size on its qubits, a 1-qubit channel on each of
  them. Measurements and resets are unchanged. Also qd.noise.apply(c, model).]==],
  ["qd.Circuit:free"] = [==[c:free(): release the circuit's op list now (also done by the garbage collector, and
  at the end of scope for `local c <close> = ...`). Any later use of c is an error.]==],
  ["qd.Circuit:copy"] = [==[c:copy() -> an independent copy of the circuit (ops and slots).]==],
  ["qd.Circuit:run"] = [==[c:run(x [, params] [, {rng=, outcomes=, first=}]) -> output [, outcomes, probs]
  x: State, Ensemble (batched in C) or DensityMatrix with c.n qubits. With measurements on a
  State/Ensemble each member samples its own outcomes (substream k); outcomes is an
  N x (measurement ops) qd.Matrix of outcome indices, probs the joint probabilities; pass
  outcomes= to fix them. discard=true measurements remove qubits from the output. On a
  DensityMatrix measurements are non-selective and discard is the partial trace.
  first=k (default 1): x holds members k, k+1, ... of a larger ensemble (qd.mpi.scatter's
  second result); member j then samples from the substream of its global index.
  c:apply(x, ...) does the same in place.]==],
  ["qd.Circuit:apply"] = [==[c:apply(x [, params] [, {rng=, outcomes=, first=}]) -> x [, outcomes, probs]
  c:run in place (see help("qd.Circuit:run")); not allowed when the circuit discards qubits.]==],
  ["qd.Circuit:vjp"] = [==[c:vjp(x, params, G [, {outcomes=, dLdP=, input_grad=true}]) -> dL/dtheta (qd.Vector), dL/d conj(x)
  Reverse-mode (adjoint) gradient. G = dL/d conj(output) (dL = 2 Re sum conj(G) d out), shaped
  like the output (register or complex array). Measurements: the outcomes are held fixed and
  the gradient flows through the normalised post-measurement state. dLdP: dL/dP for each
  member's joint outcome probability (expected-loss mode). input_grad=false: dL/dtheta only
  (skips dL/d conj(x)). c:vjp runs the circuit forward again; to run it once, see
  help("qd.Circuit:forward").]==],
  ["qd.Circuit:forward"] = [==[c:forward(x [, params] [, {rng=, outcomes=}]) -> output, tape [, outcomes, probs]
  c:run that also returns a qd.Tape: what the backward pass needs (the final state of all
  c.n qubits, the state before each measurement, the outcomes; for a DensityMatrix x, the
  input). tape:vjp(G) then gives the gradient without running the circuit again: bitwise
  the same as c:vjp(x, params, G, {outcomes = outcomes}). The tape holds copies, not x or
  params: changing them afterwards does not change it. Memory: about (1 + measurements) x
  the output's size.]==],
  ["qd.Tape"] = [==[qd.Tape: a forward run kept for its backward pass, made by c:forward (help("qd.Circuit:forward")).
  tape:vjp(G [, opts]) -> gradients; tape:circuit() -> the circuit; tape:free() releases it.
  A tape refuses its circuit once ops were added to it or it was freed.]==],
  ["qd.Tape:vjp"] = [==[tape:vjp(G [, {dLdP=, input_grad=true}]) -> dL/dtheta (qd.Vector) [, dL/d conj(x)]
  The vector-Jacobian product of the run the tape kept, as c:vjp (help("qd.Circuit:vjp")) with
  the run's outcomes. May be called any number of times (e.g. for several G).]==],
  ["qd.Tape:circuit"] = [==[tape:circuit() -> the qd.Circuit whose run the tape kept.]==],
  ["qd.Tape:free"] = [==[tape:free(): releases the tape's buffers now (also with <close> and the GC); idempotent;
  a freed tape raises "the qd.Tape has been freed".]==],
  ["qd.Circuit:grad"] = [==[c:grad(x, params, loss_fn [, {rng=, outcomes=, expected=}]) -> L, dL/dtheta, out [, outcomes]
  loss_fn(out) returns L, G. expected=true: E = sum over outcomes m, members j of P_jm l_j,
  with loss_fn(out_m, P_m, m) returning per-member losses l and G; returns E, dE/dtheta.]==],
  ["qd.Circuit:grad_ps"] = [==[c:grad_ps(x, params, loss_fn) -> L, gradient by parameter shift (2 terms, 4 for
  crx/cry/crz); needs a loss linear in the output state; refuses pure-state measurements.]==],
  ["qd.Circuit:grad_fd"] = [==[c:grad_fd(x, params, loss_fn [, {h=1e-6, outcomes=, rng=, expected=}]) -> L, central-difference gradient.]==],
  ["qd.Circuit:inverse"] = [==[c:inverse() -> the inverse circuit: ops reversed, each gate inverted, same parameter
  slots (an error if the circuit measures or resets).]==],
  ["qd.Circuit:draw"] = [==[c:draw() -> a text diagram, one line per qubit ("*" control, "M" measure, "M>" measure
  and discard, "|0>" reset; parameters by name or #slot).]==],
  ["qd.Circuit:to_qasm"] = [==[c:to_qasm([2|3] [, params]) -> OpenQASM text. QASM 3: input float[64] per slot;
  QASM 2 needs params (bound). Measurement discards are written as "pragma qd discard";
  conditional ops (from an OpenQASM `if`) as `if (c[i] == v) { ... }` (QASM 3 only).]==],
  ["qd.Circuit:ops"] = [==[c:ops() -> list of op tables {kind=, name=, qubits={...}, params={{slot=, scale=, offset=}
  | {value=}, ...}, matrix= (qd.Matrix, unitary ops), discard=, condition= (a conditional op:
  {neg=, {measurement=i, bit=b, value=v}, ...})} (qubits 0-based): what c:draw() and
  c:to_qasm() read.]==],
  ["qd.Circuit:reset"] = [==[c:reset({q...}) -> c: adds a reset of the qubits to |0> (pure states: measure, then flip the
  qubits that came out 1; density matrices: the reset channel).]==],
  ["qd.Circuit:append"] = [==[c:append(other [, qubit_map]) -> c: other's ops after c's, other's qubit q going to
  qubit_map[q+1] (default q); named slots are matched by name (created if absent), unnamed
  ones become new slots of c.]==],
  ["qd.Circuit:add_unitary"] = [==[c:add_unitary(U, {q...} [, name]) -> c: adds an arbitrary k-qubit unitary op (qd.Matrix or
  table of rows, checked for unitarity to 1e-8; the first qubit is the most significant bit
  of U's index); no parameters; name is what c:draw() shows.]==],
  ["qd.Circuit:measure"] = [==[c:measure({q...} [, {discard=false}]) -> c: adds a computational-basis measurement of
  the qubits. On a State/Ensemble run each member samples its outcome (help("qd.Circuit:run"));
  discard=true removes the measured qubits from the output; on a DensityMatrix the
  measurement is non-selective and discard is the partial trace.]==],
  ["qd.Circuit:unitary"] = [==[c:unitary([params]) -> the circuit's 2^n x 2^n complex qd.Matrix (column j = the circuit
  applied to |j>); n <= 14, no measurements or resets.]==],
  ["qd.ansatz.max_layers"] = [==[qd.ansatz.max_layers = 10000: the largest layer count L the builders accept
  (they build gate by gate in Lua, so the bound is checked before any work; raise it if you
  really need deeper circuits).]==],
  ["qd.ansatz.quddpm"] = [==[qd.ansatz.quddpm(n, L [, {ancillas=0}]) -> qd.Circuit on N = n + na qubits (ancillas are
  qubits 0..na-1). Per layer l: RX then RY on every qubit, CZ on (0,1), (2,3), ... then on
  (1,2), (3,4), ...; with na > 0 the ancillas are measured and discarded at the end.
  Slots: RX on qubit i is 2N(l-1)+i+1, RY is 2N(l-1)+N+i+1 (2NL in all).]==],
  ["qd.ansatz.strongly_entangling"] = [==[qd.ansatz.strongly_entangling(n, L) -> qd.Circuit
  Per layer l: Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi) on every qubit, then
  CX(i, (i+r) mod n) with r = ((l-1) mod (n-1)) + 1 (none for n = 1). Slots of qubit i: 3n(l-1)+3i+1, +2, +3.]==],
  ["qd.ansatz.ry_rz_cz"] = [==[qd.ansatz.ry_rz_cz(n, L) -> qd.Circuit
  Per layer l: RY on every qubit, RZ on every qubit, CZ ladder (0,1), (1,2), ...
  Slots: RY on qubit i is 2n(l-1)+i+1, RZ is 2n(l-1)+n+i+1.]==],
  ["qd.ansatz.hardware_efficient"] = [==[qd.ansatz.hardware_efficient(n, L [, {final=false}]) -> qd.Circuit
  Per layer l: RY then RZ on each qubit, then CX(0,1), CX(1,2), ...; final=true adds a last
  RY/RZ layer. Slots: RY on qubit i is 2n(l-1)+2i+1, RZ is 2n(l-1)+2i+2.]==],
  ["qd.ansatz"] = [==[qd.ansatz: circuit builders (qd.Circuit with unnamed slots in a documented layout).
  qd.ansatz.quddpm(n, L [, {ancillas=na}]), .strongly_entangling(n, L), .ry_rz_cz(n, L),
  .hardware_efficient(n, L [, {final=}]) -> qd.Circuit with the slot layout in docs/api.md.
  quddpm: per layer RX, RY on every qubit, CZ on even then odd pairs; RX on qubit i is slot
  2N(l-1)+i+1, RY is 2N(l-1)+N+i+1 (N = n + na); ancillas measured and discarded at the end.]==],
  -- channels (lua_channel.c; docs/api.md "qd.Channel")
  ["qd.channel"] = [==[qd.channel: constructors of qd.Channel (CPTP maps, checked at construction):
  depolarizing{p= [, n=1]}, global_depolarizing{lambda= [, n=]}, dephasing{p=},
  amplitude_damping{gamma=}, generalized_amplitude_damping{gamma=, p=}, pauli{px=, py=, pz=},
  reset{[n=1]}, unitary(U), kraus{K1, K2, ...}, superop(S). Apply with rho:apply(ch, targets)
  (exact) or s:apply / E:apply (trajectories). help(qd.channel.depolarizing) etc.]==],
  ["qd.channel.depolarizing"] = [==[qd.channel.depolarizing{p= [, n=1]} -> qd.Channel
  Pauli-probability form on n qubits: rho -> (1-p) rho + p/(4^n-1) sum_{P != I} P rho P, p in [0, 1].
  Kraus: sqrt(1-p) I, sqrt(p/(4^n-1)) P_j (j in base 4, first qubit most significant digit,
  0 I 1 X 2 Y 3 Z). Applied without building the 4^n operators, for any n.]==],
  ["qd.channel.global_depolarizing"] = [==[qd.channel.global_depolarizing{lambda= [, n=]} -> qd.Channel
  rho -> (1-lambda) rho + lambda I/d (x) Tr_T rho on the targets T (the whole register:
  (1-lambda) rho + lambda I/d, the QGDM forward step), lambda in [0, 1]. Without n= it acts on
  any number of targets (all qubits when none are given); n= fixes its size (needed for
  kraus/superop/choi, composition with other channels and tensor products).]==],
  ["qd.channel.dephasing"] = [==[qd.channel.dephasing{p=} -> qd.Channel: (1-p) rho + p Z rho Z (coherences x (1-2p)); Kraus sqrt(1-p) I, sqrt(p) Z.]==],
  ["qd.channel.amplitude_damping"] = [==[qd.channel.amplitude_damping{gamma=} -> qd.Channel
  |1> decays to |0> with probability gamma: K0 = [[1,0],[0,sqrt(1-gamma)]], K1 = [[0,sqrt(gamma)],[0,0]].]==],
  ["qd.channel.generalized_amplitude_damping"] = [==[qd.channel.generalized_amplitude_damping{gamma=, p=} -> qd.Channel
  Nielsen & Chuang 8.3.5: fixed point p|0><0| + (1-p)|1><1| (p = 1: amplitude damping).
  K0 = sqrt(p)[[1,0],[0,sqrt(1-g)]], K1 = sqrt(p)[[0,sqrt(g)],[0,0]], K2 = sqrt(1-p)[[sqrt(1-g),0],[0,1]],
  K3 = sqrt(1-p)[[0,0],[sqrt(g),0]]. A thermal bath (rate G, occupation N, time t) gives
  g = 1 - exp(-G(2N+1)t), p = (N+1)/(2N+1).]==],
  ["qd.channel.pauli"] = [==[qd.channel.pauli{px=, py=, pz=} -> qd.Channel
  (1-px-py-pz) rho + px X rho X + py Y rho Y + pz Z rho Z (missing keys 0; sum <= 1).]==],
  ["qd.channel.reset"] = [==[qd.channel.reset{[n=1]} -> qd.Channel: every state of the n targets -> |0..0>; Kraus |0..0><j|.]==],
  ["qd.channel.unitary"] = [==[qd.channel.unitary(U [, {tol=1e-10}]) -> qd.Channel: rho -> U rho U^dagger
  (U a 2^k x 2^k qd.Matrix or table of rows, k <= 5; ||U^dagger U - I||_F <= tol).]==],
  ["qd.channel.kraus"] = [==[qd.channel.kraus({K1, K2, ...} [, {tol=1e-10}]) -> qd.Channel
  Kraus operators on k <= 5 qubits (qd.Matrix or tables of rows, {re, im} entries allowed).
  Checked: ||sum K^dagger K - I||_F <= tol, else an error giving the deviation.]==],
  ["qd.channel.superop"] = [==[qd.channel.superop(S [, {tol=1e-10}]) -> qd.Channel
  S (4^k x 4^k) acts on vec(rho), columns stacked (QuTiP's convention). Checked through the
  Choi matrix J: Hermitian, Tr_out J = I, eigenvalues >= -tol. Kraus list from J's eigenvectors.]==],
  ["qd.Channel"] = [==[qd.Channel: a CPTP map on ch.n qubits (ch.nkraus Kraus operators, ch.name).
  a * b applies b first, then a; a:tensor(b) puts a on the first targets. ch:kraus(),
  ch:superop() (vec stacks columns, S = sum conj(K) (x) K), ch:choi() (J = sum |i><j| (x) E(|i><j|)),
  ch:is_cptp([tol]). rho:apply(ch, targets) is exact and local; s:apply(ch, targets, rng) and
  E:apply(...) sample trajectories. See help("qd.Channel:apply").]==],
  ["REG:apply"] = [==[obj:apply(ch [, targets] [, rng] [, {branches=true}]) -> obj [, branches]
  (also ch:apply(obj, ...)). In place. targets: a qubit or a list of k distinct qubits (first =
  most significant bit of the channel's index); may be omitted when the channel covers the
  register. DensityMatrix: exact, never a 4^n x 4^n matrix (local superoperator pass or Kraus
  sum). State/Ensemble: each member picks branch i with probability ||K_i psi||^2 from its own
  substream and is renormalised; branches (1-based Kraus indices; an integer for a State, a
  table for an Ensemble) if asked. The average over members converges to the exact result.]==],
  ["qd.Channel:kraus"] = [==[ch:kraus() -> {qd.Matrix, ...}: the Kraus operators (branch i is the i-th).]==],
  ["qd.Channel:superop"] = [==[ch:superop() -> 4^k x 4^k qd.Matrix S = sum conj(K_i) (x) K_i: vec(E(rho)) = S vec(rho), columns stacked.]==],
  ["qd.Channel:choi"] = [==[ch:choi() -> 4^k x 4^k qd.Matrix J = sum_ij |i><j| (x) E(|i><j|) (input first; Tr J = 2^k).]==],
  ["qd.Channel:is_cptp"] = [==[ch:is_cptp([tol=1e-10]) -> boolean, ||sum K^dagger K - I||_F.]==],
  ["qd.Channel:compose"] = [==[a:compose(b) = a * b: the channel rho -> a(b(rho)) (b first).]==],
  ["qd.Channel:tensor"] = [==[a:tensor(b) -> a (x) b on k_a + k_b <= 5 qubits, a on the first (most significant) targets.]==],

  -- Hamiltonians and dynamics (lua_pauli.c, lua_dynamics.c)
  ["qd.pauli_sum"] = [==[qd.pauli_sum{{c, "ZZI"}, {c, "XZ", {q1, q2}}, ...} [, {n=}] | qd.pauli_sum("ZZI") -> qd.PauliSum
  The operator sum_t c_t P_t (c a number or {re, im}; a full-length string, or letters
  with their qubits; n from the first full-length string or the option n). Equal strings
  are merged; terms keep their order of first occurrence (H:terms()). Builders:
  qd.pauli_sum.tfim(n, g [, {J=1, periodic=false}]) = -J sum Z_i Z_{i+1} - g sum X_i,
  qd.pauli_sum.sigma_minus(n, q) = |0><1| = (X + iY)/2, .sigma_plus(n, q) = |1><0|.
  Arithmetic: H + K, H - K, c * H, H / c, -H, H * K (operator product).]==],
  ["qd.pauli_sum.tfim"] = [==[qd.pauli_sum.tfim(n, g [, {J=1, periodic=false}]) -> -J sum_i Z_i Z_{i+1} - g sum_i X_i (open chain unless periodic).]==],
  ["qd.pauli_sum.sigma_minus"] = [==[qd.pauli_sum.sigma_minus(n, q) -> |0><1| = (X + iY)/2 on qubit q (amplitude-damping jump operator).]==],
  ["qd.pauli_sum.sigma_plus"] = [==[qd.pauli_sum.sigma_plus(n, q) -> |1><0| = (X - iY)/2 on qubit q.]==],
  ["qd.PauliSum"] = [==[qd.PauliSum: sum_t c_t P_t on H.n qubits (#H terms), immutable. Applied matrix-free
  (bit masks, O(terms 2^n)): H:apply(obj) (new State/Ensemble H|psi>), H:expect(obj) (number,
  or re, im if not Hermitian; qd.Vector for an Ensemble; Tr(H rho) for a DensityMatrix).
  Dense (<= 12 qubits, LAPACK, cached): H:matrix(), H:eigh() -> w, V, H:spectrum(),
  H:ground_state() -> State, E0, gap (Lanczos above 10 qubits), H:gibbs(beta) -> rho, ln Z. H:evolve(obj, t) /
  obj:evolve(H, t) applies exp(-iHt). H:terms(), H:dagger(), H:simplify([tol]),
  H:is_hermitian([tol]), H:norm_bound() (sum |c_t|), H:free().]==],
  ["qd.PauliSum:apply"] = [==[H:apply(obj) -> new qd.State / qd.Ensemble H|psi> (not normalised), matrix-free.]==],
  ["qd.PauliSum:expect"] = [==[H:expect(obj) -> <psi|H|psi> (State), Tr(H rho) (DensityMatrix), or a qd.Vector per member
  (Ensemble); re, im (complex vector) when H is not Hermitian. Never builds the matrix.]==],
  ["qd.PauliSum:matrix"] = [==[H:matrix() -> the dense 2^n x 2^n complex qd.Matrix (n <= 12).]==],
  ["qd.PauliSum:eigh"] = [==[H:eigh() -> w (ascending qd.Vector), V (qd.Matrix, eigenvectors as columns); Hermitian H, n <= 12.]==],
  ["qd.PauliSum:spectrum"] = [==[H:spectrum() -> ascending eigenvalues (qd.Vector).]==],
  ["qd.PauliSum:ground_state"] = [==[H:ground_state([{method="auto"|"eig"|"lanczos", tol=1e-10}]) -> State, E0, gap
  The lowest eigenvector (phase fixed: its first largest-modulus amplitude real > 0), its
  energy and E1 - E0. "eig": dense LAPACK (n <= 12); "lanczos": restarted Lanczos until
  ||H psi - E0 psi|| <= tol max(1, |E0|), gap = nil; "auto": eig up to 10 qubits.]==],
  ["qd.PauliSum:gibbs"] = [==[H:gibbs(beta) -> DensityMatrix exp(-beta H)/Z, ln Z (beta >= 0; also qd.data.gibbs(H, beta)).]==],
  ["qd.PauliSum:terms"] = [==[H:terms() -> {{c, "ZZI"}, ...} (c a number, or {re, im} if complex).]==],
  ["qd.PauliSum:dagger"] = [==[H:dagger() -> the adjoint (coefficients conjugated).]==],
  ["qd.PauliSum:simplify"] = [==[H:simplify([tol=0]) -> a copy without terms of |c| <= tol (equal strings are always merged).]==],
  ["qd.PauliSum:is_hermitian"] = [==[H:is_hermitian([tol=1e-12]) -> true if every coefficient is real to tol.]==],
  ["qd.PauliSum:norm_bound"] = [==[H:norm_bound() -> sum_t |c_t| (an upper bound of the operator norm).]==],
  ["REG:evolve"] = [==[obj:evolve(H, t [, {method="auto"|"eig"|"krylov", tol=1e-12, stats=true}]) -> obj [, stats]
  (also H:evolve(obj, t, ...)). In place: obj <- exp(-iHt) obj on a State or Ensemble, U rho U^H
  on a DensityMatrix. "eig": dense eigen-decomposition (cached on H; ~1e-13 accurate);
  "krylov": Lanczos with adaptive sub-steps, accumulated error <= ~tol (Expokit-style
  estimate; refused when |t| times H's norm bound exceeds 1e7: use "eig"); "auto": eig up to 7 qubits, else Krylov. stats: {substeps, matvecs,
  error_estimate}. On a DensityMatrix with {jumps = {L1, ...}, rtol=, atol=}: the Lindblad
  equation instead (see help(qd.lindblad)); returns rho, info.]==],
  ["qd.lindblad"] = [==[qd.lindblad(rho, H, jumps, t | {t1, t2, ...} [, opts]) -> DensityMatrix | {DMs}, info
  Integrates drho/dt = -i[H, rho] + sum_k (L_k rho L_k^H - 1/2 {L_k^H L_k, rho}) from
  t = 0 (rho unchanged; H a qd.PauliSum/string or nil, jumps a table of them or nil; rates
  go into L, e.g. math.sqrt(g) * qd.pauli_sum.sigma_minus(n, q)). Adaptive Dormand-Prince
  5(4), operators applied locally (never a superoperator). opts: rtol=1e-8, atol=1e-10,
  h0, max_steps, observe = {ops} (info.expect: times x ops matrix of Tr(O rho)).
  info: steps, rejected, fevals. n <= 10.]==],
  ["qd.sse"] = [==[qd.sse(obj, {dt=, steps=, H=, measure={A1, ...}, gamma=, scheme="rouchon"|"euler",
  normalize=true, rng=, t0=0, reverse=false, feedback={terms=, fn= | law=}, record=true,
  observe={...}, every=1}) -> result
  Stochastic Schroedinger trajectories (Ito, diffusive unravelling of the measured Hermitian
  observables A_k at rates gamma_k) of every member of a State/Ensemble, in place:
  d psi = [-iH dt - sum g/2 (A - <A>)^2 dt + sum sqrt(g) (A - <A>) dW] psi,
  records dy_k = 2 sqrt(g_k) <A_k> dt + dW_k; the average obeys qd.lindblad with
  L_k = sqrt(g_k) A_k. "euler": Euler-Maruyama (+ renormalisation unless normalize=false);
  "rouchon": Rouchon-Ralph Kraus scheme M psi / ||M psi|| (norm exact, CP). Member j draws
  from substream j of rng:split(). feedback.fn(step, t, obj) is called before every step
  and returns the coefficients of feedback.terms (a table / qd.Vector shared by all, or a
  #terms x N qd.Matrix, one column per member): H(t) = H + sum_j c_j P_j. Or
  feedback.law(t, s), called once with symbolic t and s (s:expect(P) = a member's <P>),
  returns one formula per term (+ - * / ^2, :exp :log :sqrt :tanh :atanh :sin :cos
  :sigmoid :abs :clamp :mul :div :min :max); qd.sse evaluates it for every member at
  every step in C (no Lua call per step; no if/else on the symbolic values; a non-finite
  value is an error naming member and step). reverse=true:
  t runs t0, t0 - dt, ..., H acts as exp(+iH dt). result: records (one steps x N qd.Matrix
  per observable), observed (ensemble means, (steps/every + 1) x #observe), times, t.]==],
  ["qd.data.tfim"] = [==[qd.data.tfim(n, {g_lo, g_hi} | g, N [, rng] [, {J=1, periodic=false}]) -> Ensemble, g
  (n <= 20) Ground states of -J sum Z_i Z_{i+1} - g sum X_i, g ~ U[g_lo, g_hi) per member (member k
  from substream k-1 of rng:split()); g a qd.Vector. QuDDPM's task: tfim(4, {0.2, 0.4}, 100).]==],
  -- QuDDPM protocol and progress lines (protocols/quddpm.lua, progress.lua; docs/api.md "QuDDPM")
  ["qd.protocols.quddpm"] = [==[local quddpm = require "qd.protocols.quddpm"
  QuDDPM end to end (arXiv 2310.05866): quddpm.run{...} trains the backward steps t = T-1..0
  one at a time and writes a run directory (run.json, forward.npy, params.npy, loss.npy,
  generated_train.npy, generated_test.npy, checkpoint.json); quddpm.qudt{...} and
  quddpm.qugan{...} are the paper's baselines; quddpm.metric(name, E, S0);
  quddpm.stream(seed, name); quddpm.resume_options(opts, dir); quddpm.cli_options(extra).]==],
  ["qd.protocols.quddpm.generate_from"] = [==[quddpm.generate_from(res, E, seed [, key=1]) -> Ensemble at t = 0
  The backward steps of a finished run (res = quddpm.run(...)) applied to the noise states E,
  measurements from the substreams key + t of qd.rng(seed): two models given the same E, seed
  and key share their measurement streams (generalisation_quantum.lua --model quddpm).]==],
  ["qd.protocols.quddpm.run"] = [==[quddpm.run{target=, schedule=, n=, L=, N=, epochs= [, na=1, seed=1, loss="mmd",
  lr=5e-3, optimizer="adam", best_of=1, screen=0, N_test=N, sinkhorn_eps=0.05,
  metrics={"F0","mmd"}, out=, resume=, ckpt_every=0, stop_after=0, quiet=, progress="auto",
  options=, name=]} -> {dir, stopped, params, losses, sets, gen_train, gen_test, metrics, timing}
  Forward sets by qd.diffusion.forward; backward step t = qd.ansatz.quddpm(n, L, {ancillas=na})
  trained on D(generated, N targets of S_t) with the sampled ancilla outcome held fixed;
  best-of-k initialisations; checkpoint after every step; resume = dir continues bit for bit.
  metrics: F0, mmd, wass, y2, p_hat, magnetization -> <name>_train / <name>_test.]==],
  ["qd.protocols.quddpm.qudt"] = [==[quddpm.qudt{target=, n=, L=, N=, epochs= [, na=1, seed=1, lr=5e-3, N_test=, quiet=]}
  Direct-transport baseline: one circuit qd.ansatz.quddpm(n, L, {ancillas=na}) trained on
  MMD(G(Haar inputs), target). -> {params, losses, gen_train, gen_test, metrics, seconds}]==],
  ["qd.protocols.quddpm.qugan"] = [==[quddpm.qugan{target=, n=, L=, N=, epochs= [, na=1, D_layers=4, seed=1, lr=5e-3]}
  QuGAN baseline: the QuDT generator against a hardware-efficient discriminator,
  P_real = (1+<Z0>)/2, L_D = mean P_real(fake) - mean P_real(real), L_G = -mean P_real(fake).]==],
  ["qd.protocols.quddpm.metric"] = [==[quddpm.metric(name, E [, S0]) -> number
  F0 = mean |<0..0|psi>|^2; mmd / wass to S0; y2 = mean <Y>^2; p_hat = mean |<10|psi>|^2 / (0.55*0.2933);
  magnetization = mean sum_b |psi_b|^2 |(1/n) sum_j (2 b_j - 1)|.]==],
  -- QGDM / RE-QGDM / QGAN (protocols/qgdm.lua; docs/api.md "QGDM")
  ["qd.protocols.genqc"] = [==[local genqc = require "qd.protocols.genqc"
  genQC (arXiv 2311.02041) in small: a conditional circuit-diffusion model on SRV classes trained in
  qd (fixed orthogonal token embedding, linear or cos_alpha schedule, MLP denoiser with the class
  embedded, classifier-free guidance, DDIM, nearest-embedding decoding; or process = "masked":
  absorbing-state discrete diffusion over the time steps, revealed one at a time; model = "conv":
  a residual 1-D convolution over the time steps, qd.nn.conv, instead of the MLP, with heads > 0
  self-attention over all steps in each block); genqc.data and
  genqc.eval_file for data sets and evaluation runs. Examples genqc_data/train/eval.lua.]==],
  ["qd.protocols.genqc.run"] = [==[genqc.run{[qubits=3, max_gates=8, samples=30000, T=1000, schedule="cos_alpha", hidden={512,512,512},
  iterations=4000, batch=256, lr=1e-3, drop=0.1, guidance=4, steps=20, per_class_samples=256, seed=1, out=,
  process="gaussian"|"masked", prediction="x0"|"epsilon"|"logits", self_cond=false, eta=0, ema=0,
  model="mlp"|"conv", channels=96, layers=4, kernel=5, heads=0 (conv only),
  masked only: class_weight={["[2,2,2]"]=3, ...} (loss weights, 1 if absent), temperature=1 (0 = argmax),
  reveal=1 (steps per pass), remask=0, remask_rounds=3 (ReMDM re-masking of the least confident steps)]}
  -> {dir, metrics (accuracy, accuracy_<srv>, accuracy_min_class, valid_fraction, unique_fraction,
  novel_fraction, gates_mean), per_class, params, losses, generated, requested, timing}]==],
  ["qd.protocols.genqc.data"] = [==[genqc.data{qubits, max_gates, min_gates, vocab, samples, per_class, label, dedup, seed, out}
  -> {dir, metrics, dataset}: a data-set run (tokens.npy, srv.npy, run.json)]==],
  ["qd.protocols.genqc.eval_file"] = [==[genqc.eval_file{file=, vocab=, target="srv"|"unitary", srv=ranks|file, unitary=file,
  qubit_order="qd"|"qiskit", train=file, tol=1e-3, out=} -> {dir, metrics, result}]==],
  ["qd.protocols.genqc.schedule"] = [==[genqc.schedule("linear"|"cos_alpha", T) -> abar (abar[t + 1], t = 0 ... T - 1)]==],
  ["qd.protocols.genqc.embedding"] = [==[genqc.embedding(V, rng) -> E (K x K, K = 2V + 2), vmin = -V: fixed orthogonal token embedding]==],
  ["qd.protocols.genqc.setup"] = [==[genqc.setup(c) -> the model's fixed parts (data set, embedding, features, network)]==],
  ["qd.protocols.genqc.sample"] = [==[genqc.sample(R, params, class, B, rng [, g]) -> token batch: DDIM with guidance g
  (masked: reveal passes at R.c.temperature, R.c.reveal steps per pass, then R.c.remask re-masking)]==],
  ["qd.protocols.genqc.draw"] = [==[genqc.draw(Y, o, b, K, tau, rng) -> k, p: a column drawn from the softmax of Y[o+1..o+K, b]
  at temperature tau (0: the argmax, no random number), p its probability at temperature 1]==],
  ["qd.protocols.genqc.evaluate"] = [==[genqc.evaluate(R, parts) -> metrics, per-class tables of qd.synth.evaluate]==],
  ["qd.protocols.genqc.train_step"] = [==[genqc.train_step(R, state, it) -> loss: one Adam step on training batch it]==],
  ["qd.protocols.qgdm"] = [==[local qgdm = require "qd.protocols.qgdm"
  Diffusion of density matrices (arXiv 2401.07039): qgdm.run{...} trains QGDM (blocks = 1)
  or RE-QGDM (blocks > 1: auxiliary qubits reset and reused) and writes a run directory
  (run.json, target.npy, generated.npy, forward.npy, generated_chain.npy, params.npy,
  history.npy, checkpoint.json); qgdm.qgan{...} is the QGAN baseline; qgdm.target(kind, n,
  rng [, opts]); qgdm.forward(rho0, schedule [, kind]); qgdm.circuits(c); qgdm.pieces.]==],
  ["qd.protocols.qgdm.run"] = [==[qgdm.run{target=, schedule=, L=, iterations= [, na=n, blocks=1, time="angle"|"basis",
  forward="global"|"local", ansatz="hardware_efficient"|"strongly_entangling"|"ry_rz_cz",
  loss="infidelity"|"trace_distance"|"hilbert_schmidt"|"superfidelity", training="chain"|"teacher",
  method="auto"|"kraus"|"dm", lr=0.02, lr_decay="none"|"cosine", init_scale=0.1, step_weights={w_1..w_T},
  seed=1, out=, resume=, ckpt_every=0, stop_after=0, quiet=,
  progress="auto", options=, name="qgdm"]} -> {dir, stopped, metrics, params, losses,
  fidelities, generated, chain, forward, timing}
  One parameter-shared circuit per step on data + time register + auxiliaries, traced out;
  generation from I/d; loss sum_t w_t D(rhohat_{t-1}, rho_{t-1}) (w_t = 1 unless step_weights), Adam on the exact gradient
  through the whole chain ("chain") or per step from the exact rho_t ("teacher"). method
  "kraus" (auto): each block of a step the channel of its isometry's Kraus blocks (the
  circuit on its basis inputs as an ensemble); "dm": the register's density matrix.
  metrics: fidelity (Uhlmann, squared), trace_distance, fidelity_per_t (t = T..0), alpha_bar.]==],
  ["qd.protocols.qgdm.qgan"] = [==[qgdm.qgan{...as qgdm.run... [, D_layers=4, lr_d=lr]} -> as qgdm.run
  QGAN baseline: the same generator chain (same parameters) against a parameterised
  measurement D(rho) = P(qubit 0 = 0 after hardware_efficient(n, D_layers)); per iteration
  one Adam step of D on D(fake) - D(target), one of the generator on -D(fake).]==],
  ["qd.protocols.qgdm.target"] = [==[qgdm.target("pure"|"mixed"|"gibbs", n, rng [, {rank=2, beta=1, g=1}]) -> DensityMatrix
  Haar-random pure state; random rank-r mixture (Haar eigenvectors, Dirichlet weights);
  Gibbs state of the open TFIM -sum Z Z - g sum X at inverse temperature beta.]==],
  ["qd.protocols.qgdm.forward"] = [==[qgdm.forward(rho0, schedule [, "global"|"local"]) -> {rho_0..rho_T}, alpha_bar
  global: rho_t = abar_t rho0 + (1 - abar_t) I/d; local: every qubit through
  qd.channel.depolarizing{p = beta_t} at step t.]==],
  -- generalisation metrics (metrics.lua; docs/api.md "Generalisation metrics")
  ["qd.metrics"] = [==[qd.metrics: generalisation metrics of a generative model (arXiv 2605.21402):
  memorisation(generated, train), convergence(E1, E2), latent_recovery(E, u), for quantum
  ensembles (overlap = fidelity) or real samples (a d x N qd.Matrix, columns = samples;
  overlap = squared cosine); theory.* the linear Gaussian testbed's predictions.]==],
  ["qd.metrics.memorisation"] = [==[qd.metrics.memorisation(generated, train) -> m, per (qd.Vector), nearest (table)
  per[k] = max_j overlap(generated_k, train_j) (one overlap matrix: a zgemm/dgemm), nearest[k]
  the j attaining it, m = mean_k per[k]. Both Ensembles (or States) or both real qd.Matrix.]==],
  ["qd.metrics.convergence"] = [==[qd.metrics.convergence(E1, E2) -> q, per (qd.Vector)
  per[k] = overlap(E1_k, E2_k) of paired members (two models driven by the same noise),
  q = mean. Equal member counts required.]==],
  ["qd.metrics.latent_recovery"] = [==[qd.metrics.latent_recovery(E, u) -> Q, v, lambda
  Q = |<v|u>|^2 / (<v|v><u|u>), v the top eigenvector (eigenvalue lambda) of E's average state
  (E an Ensemble, u a qd.State; v a qd.State) or of X X^T / N (X a real d x N qd.Matrix, u a
  qd.Vector of d; v a qd.Vector).]==],
  ["qd.metrics.theory"] = [==[qd.metrics.theory: asymptotic predictions for the linear Gaussian testbed x ~ N(0, I +
  beta u u^T), x_gen = S^(1/2) z, gamma = n/d: latent_recovery(gamma, beta), convergence(gamma),
  memorisation(n, d, rng [, draws]), memorisation_floor(n, d, rng [, draws]), mp_mean(c, f).]==],
  ["qd.metrics.theory.latent_recovery"] = [==[qd.metrics.theory.latent_recovery(gamma, beta) -> Q
  BBP: (1 - 1/(gamma beta^2)) / (1 + 1/(gamma beta)) for gamma > 1/beta^2, else 0.]==],
  ["qd.metrics.theory.convergence"] = [==[qd.metrics.theory.convergence(gamma) -> q = (E sqrt(lambda))^4 over
  Marchenko-Pastur(d/n): the squared cosine of S1^(1/2) z and S2^(1/2) z (S1, S2 free).]==],
  ["qd.metrics.theory.memorisation"] = [==[qd.metrics.theory.memorisation(n, d, rng [, draws=2000]) -> m | nil
  Small-load limit E max_i w_i^2 / |w|^2, w ~ N(0, I_n) (Monte Carlo from rng); nil for n > d.]==],
  ["qd.metrics.theory.memorisation_floor"] = [==[qd.metrics.theory.memorisation_floor(n, d, rng [, draws=500]) -> m
  E max over n independent directions of g^2 / (g^2 + d - 1): a model that forgot its data.]==],
  ["qd.metrics.theory.mp_mean"] = [==[qd.metrics.theory.mp_mean(c, f [, K=4000]) -> the mean of f(lambda) under the
  Marchenko-Pastur law of ratio c (variance 1; atom 1 - 1/c at 0 when c > 1).]==],
  -- reverse-time diffusion (protocols/reverse_diffusion.lua; docs/api.md "Reverse-time diffusion")
  ["qd.protocols.reverse_diffusion"] = [==[local rd = require "qd.protocols.reverse_diffusion"
  Reverse-time quantum diffusion (arXiv 2606.03848): forward = continuous measurement (qd.sse);
  generation = the measurement run backwards plus a feedback Hamiltonian, exact (one qubit,
  A = Z: from the Fokker-Planck law of z) or learnt (least squares, or an MLP from qd.nn, on
  backward increments of Pauli expectations). rd.run{...}, rd.data, rd.forward, rd.purified,
  rd.reverse, rd.fokker_planck, rd.exact_feedback, rd.learn, rd.learn_mlp, rd.learnt_feedback,
  rd.time_grid, rd.paulis, rd.batch_metrics.]==],
  ["qd.protocols.reverse_diffusion.run"] = [==[rd.run{data= [, params=, feedback="exact"|"learnt"|"none", N=200,
  repeats=20, tau=0.5, gamma=1, H=, measure={strings} (Z per qubit), steps=200, t_stop=1e-3, sub=1,
  fp_h=0.01, phi_bins=, ref_N=20000, train_N=2000, weight=1, chain=false, start="terminal"|"purified",
  degree=3, stride=4, ridge=1e-6, fb_ridge=1e-3, model="linear"|"mlp", hidden=64, mlp_steps=3000,
  mlp_batch=256, mlp_lr=3e-3, seed=1, out=, quiet=, progress=, save_data=true, name=]}
  -> {dir, metrics, settings, generated, data, terminal (tables of R ensembles), timing}
  metrics: mmd_return, mmd_noise, mmd_terminal, wass_return, wass_noise, wass_terminal and
  ratios. Files generated.npy, data.npy, terminal.npy (R, N, 2^n). One pass: resume,
  stop_after and ckpt_every are refused.]==],
  ["qd.protocols.reverse_diffusion.data"] = [==[rd.data(kind, N, rng [, params]) -> Ensemble, params
  circle {z0}, cap {zc}, clusters {theta1, phi1, theta2, phi2, sigma} (1 qubit); cluster2 {eps},
  bell {spread} (2 qubits); tfim {g_lo, g_hi} (4 qubits). Defaults in rd.datasets.]==],
  ["qd.protocols.reverse_diffusion.forward"] = [==[rd.forward(E0, c, rng [, keep]) -> E_T [, snapshots]
  The forward SSE on c.grid (c from rd.check); keep = true: the ensemble at every grid time.]==],
  ["qd.protocols.reverse_diffusion.reverse"] = [==[rd.reverse(E_T, c, rng, fb, terms) -> E_gen
  The reverse SSE (reverse = true) from tau to t_stop; fb(k, E) the coefficients of the
  feedback terms at grid index k.]==],
  ["qd.protocols.reverse_diffusion.fokker_planck"] = [==[rd.fokker_planck(u0s, g, times [, {h=0.01, U=, sub=2, start=10}]) -> F
  The law of u = artanh z of one qubit measured in Z at rate g from the samples u0s, at the
  ascending times: F.u (grid), F.q[k] (density), F.h. Finite volumes, Crank-Nicolson.]==],
  ["qd.protocols.reverse_diffusion.exact_feedback"] = [==[rd.exact_feedback(c, ref) -> fn(k, E), {"X", "Y"}, solutions
  H_fb = 2 g kappa(u, t) (<Y> X - <X> Y), kappa = d/du log q_t - 2 tanh u from the
  Fokker-Planck law of the reference ensemble ref (per azimuth sector if c.phi_bins > 1).]==],
  ["qd.protocols.reverse_diffusion.learn"] = [==[rd.learn(snapshots, c) -> model
  Least squares (ridge c.ridge) of the backward increments of the Pauli expectations (weight
  <= c.weight) on features (monomials up to c.degree) x (1, exp(-t/l_j)); pairs every c.stride
  grid points. c.model = "mlp": rd.learn_mlp.]==],
  ["qd.protocols.reverse_diffusion.learn_mlp"] = [==[rd.learn_mlp(snapshots, c) -> model
  The same regression with a qd.nn MLP (inputs: the expectations and exp(-t/l_j); two tanh
  layers of c.hidden; outputs scaled by their standard deviations), Adam over c.mlp_steps
  mini-batches of c.mlp_batch rows from the substream "mlp".]==],
  ["qd.protocols.reverse_diffusion.learnt_feedback"] = [==[rd.learnt_feedback(model, c) -> fn(t, E), terms
  Per member: h = learnt drift - measurement drift, c = (J^T J + fb_ridge I)^{-1} J^T h with
  J_QP = i<[P, Q]>; returns the #terms x N coefficient matrix.]==],
  ["qd.protocols.reverse_diffusion.time_grid"] = [==[rd.time_grid(tau, t_stop, steps [, ratio=0.05]) -> {0, t_stop, ..., tau}
  Geometric spacing ratio * t near 0, at most tau / steps.]==],
  ["qd.protocols.reverse_diffusion.purified"] = [==[rd.purified(n, N, measure, rng) -> Ensemble
  The states I/d purifies to under local monitoring: per qubit uniform on the Bloch sphere (X,
  Y and Z monitored) or |0>/|1> with probability 1/2 (Z alone); other sets are refused.]==],
  ["qd.protocols.reverse_diffusion.paulis"] = [==[rd.paulis(n, w [, chain]) -> the Pauli strings on n qubits of weight 1 ... w
  (chain = true: only those acting on consecutive qubits).]==],
  ["qd.protocols.reverse_diffusion.batch_metrics"] = [==[rd.batch_metrics(generated, data, terminal) -> metrics
  The mmd_* and wass_* averages over R batches (tables of R ensembles).]==],
  -- Born machines (protocols/qcbm.lua; docs/api.md "QCBM")
  ["qd.protocols.qcbm"] = [==[local qcbm = require "qd.protocols.qcbm"
  Quantum circuit Born machines and their trainability (arXiv 2305.02881): qcbm.train{...}
  trains p(x) = |<x|U(theta)|0>|^2 with the MMD (any bandwidth or mixture), KL, local or
  global fidelity loss (exact probabilities or shots) and writes a run directory (run.json,
  history.npy, params.npy, probs.npy, target.npy, checkpoint.json); qcbm.variance{...} is the
  concentration study (Var of every loss and of dL/dtheta_j over random inits, per n);
  qcbm.target(kind, n), qcbm.hep(n), qcbm.ansatz(name, n, L), qcbm.zdiff_by_order(p, q),
  qcbm.distances(p, q, sigma), qcbm.fit_rate(n, v), qcbm.pieces.]==],
  ["qd.protocols.qcbm.train"] = [==[qcbm.train{n=, iterations= [, data="ghz"|"bars"|"hep"|"spurious", loss="mmd"|"kl"|
  "local_fidelity"|"global_fidelity", sigma=1 (number, "n" or a list: a mixture), ansatz="ry_rz_cz"|
  "hardware_efficient"|"strongly_entangling", L=2, lr=0.05, shots=0, grad="auto"|"adjoint"|"shift",
  seed=1, out=, resume=, ckpt_every=0 (100), stop_after=0, quiet=, progress=, save_data=true, options=,
  name="qcbm"]} -> {dir, stopped, settings, metrics, params, probs, history, timing}
  theta_0 ~ U(0, 2 pi) (stream "init"), Adam. Gradients: adjoint (exact) or parameter shift;
  shots > 0 (mmd only): U-statistic loss against `shots` data draws, sampled shift gradient.
  metrics: kl, tv, mmd (at sigma), loss, zdiff_by_order, zdiff_low, iterations.]==],
  ["qd.protocols.qcbm.variance"] = [==[qcbm.variance{n = {sizes} [, K=200, L=2, ansatz="ry_rz_cz", data="ghz",
  sigmas={0.1, 1, "n"}, param=1, grad="shift"|"adjoint", seed=1, out=, resume=, stop_after=, quiet=, save_data=true]}
  -> {dir, stopped, settings (keys), values (per size: loss/grad lists per key), metrics, timing}
  metrics.variance = {loss = {sigma_0.1 = {per n}, ..., kl, local_fidelity, global_fidelity},
  grad = {...}, n = {...}} (unbiased variance over the K inits theta ~ U(0, 2 pi)); metrics.mean
  likewise; metrics.orders[key][i] = mean MMD^2 by Pauli weight. values_nNN.npy per size.]==],
  ["qd.protocols.qcbm.target"] = [==[qcbm.target("ghz"|"bars"|"hep"|"spurious", n) -> qd.Vector q over 2^n bitstrings
  ghz: 1/2 (delta_0..0 + delta_1..1); bars: bars and stripes on the most square rows x cols
  grid; hep: qcbm.hep(n); spurious: parity (all marginals below n bits uniform, <Z..Z> = 1).]==],
  ["qd.protocols.qcbm.hep"] = [==[qcbm.hep(n) -> qd.Vector: a jet-like (pT, |eta|) pair discretised to n bits: pT in [30,
  300] GeV, dN/dpT ~ pT^-3, 2^ceil(n/2) log bins on the first qubits; |eta| in [0, 2.5]
  half-normal of width 0.5 + 1.5 (30/pT), linear bins on the others; exact bin masses.]==],
  ["qd.protocols.qcbm.ansatz"] = [==[qcbm.ansatz("ry_rz_cz"|"hardware_efficient"|"strongly_entangling", n, L) -> qd.Circuit]==],
  ["qd.protocols.qcbm.target_state"] = [==[qcbm.target_state(q) -> qd.State sum_x sqrt(q_x) |x> (the |q> of the fidelity losses).]==],
  ["qd.protocols.qcbm.zdiff_by_order"] = [==[qcbm.zdiff_by_order(p, q) -> {d_0, ..., d_n}: d_k = sum over Pauli-Z strings A
  of weight k of (<Z_A>_p - <Z_A>_q)^2 (how far apart the k-body correlations are).]==],
  ["qd.protocols.qcbm.distances"] = [==[qcbm.distances(p, q, sigma) -> {kl = KL(q || p), tv = 1/2 sum |p - q|, mmd = MMD^2 at sigma}]==],
  ["qd.protocols.qcbm.fit_rate"] = [==[qcbm.fit_rate(n, v) -> b, a: least squares of log v = a - b n (b: decay per qubit; v <= 0 skipped).]==],
  ["qd.protocols.qcbm.variance_theta"] = [==[qcbm.variance_theta(seed, n, k, P) -> theta of init k at size n in qcbm.variance (U(0, 2 pi)^P).]==],
  ["qd.protocols.qcbm.sigmas_of"] = [==[qcbm.sigmas_of(spec, n) -> list of bandwidths (spec: a number, "n" or a list of them).]==],
  ["qd.protocols.qcbm.stream"] = [==[qcbm.stream(seed, name) -> qd.Rng: the substream of qd.rng(seed) for name: "init"
  (training's theta), "data" (the target's samples), "shots" (model samples; iteration it uses
  its substream it), "variance" (the study: substream n, then k for init k).]==],
  ["qd.protocols.qcbm.study_point"] = [==[qcbm.study_point(Z, theta, j, "shift"|"adjoint") -> loss, grad, orders: every loss of the
  study and dL/dtheta_j at one theta (Z = {circ, inv, zero, q, qstate, sig, keys}, as study_size
  builds it); orders[i] = mmd_bits_orders at bandwidth i.]==],
  ["qd.protocols.qcbm.mean_var"] = [==[qcbm.mean_var(x) -> mean, unbiased variance (denominator #x - 1) of a list, in index order.]==],
  ["qd.protocols.qcbm.sigma_key"] = [==[qcbm.sigma_key(s) -> "sigma_0.1", "sigma_1", "sigma_n": the run.json key of a bandwidth (%g).]==],
  ["qd.protocols.qcbm.pieces"] = [==[qcbm.pieces: check_train(cfg), check_variance(cfg), model(c), loss_grad(R, theta, "adjoint"|"shift"|"shots"
  [, rng]) -> L, dL/dtheta, loss_at(R, theta), study_point, study_size(c, n, keys [, prog]).]==],
  ["qd.protocols.qcbm.parse_sigma"] = [==[qcbm.parse_sigma(text) -> a sigma spec from "1", "n" or "0.25,1,n" (nil, bad item if malformed).]==],
  -- MSQuDDPM (protocols/msquddpm.lua; docs/api.md "MSQuDDPM")
  ["qd.protocols.msquddpm"] = [==[local msq = require "qd.protocols.msquddpm"
  Mixed-state QuDDPM (arXiv 2411.17608): msq.run{...} trains the measured backward steps
  t = T..1 one at a time on an ensemble of density matrices held as a stack (a complex
  d^2 x N qd.Matrix, column k = member k, column-major) and writes a run directory (run.json,
  params.npy, loss.npy, target.npy, generated_train.npy, generated_test.npy, checkpoint.json);
  msq.targets.cluster / circle / tfim; msq.stack(list), msq.member(S, k);
  msq.loss(A, B, "mmd"|"wasserstein" [, grad]); msq.betas(kind, T [, {from=, to=, s=}]);
  msq.forward(S0, betas, reps); msq.mx_operator(n); msq.stream(seed, name); msq.pieces.]==],
  ["qd.protocols.msquddpm.run"] = [==[msq.run{target=, T=, L=, epochs= [, na=2, ancilla="haar"|"zero", N=100, N_test=N,
  schedule="cosine"|"sq_cosine"|"linear", beta_from=, beta_to=, per_qubit=true, loss="mmd"|"wasserstein",
  kernel="superfidelity"|"uhlmann", best_of=1, screen=epochs//10,
  lr=5e-3, lr_decay=1, lr_decay_count=2, observable="F0"|"mx", seed=1, out=, resume=, ckpt_every=0,
  stop_after=0, quiet=, progress=, options=, save_data=true, name="msquddpm"]}
  -> {dir, stopped, metrics, params, losses, gen_train, gen_test, sets, settings, timing}
  Forward: global depolarizing per step (reps = n per step with per_qubit, else 1). Step t:
  qd.ansatz.quddpm(na + n, L) on |phi 0..0><..| (x) rho, ancillas measured, outcome sampled
  and kept, data renormalised (Kraus blocks of the circuit's isometry, gradient through them
  and the circuit's adjoint). Loss: superfidelity MMD or Wasserstein. metrics: F0 (or mx),
  purity, mmd, wass at t = 0 for train, test and a second data sample (data).]==],
  ["qd.protocols.msquddpm.loss"] = [==[msq.loss(A, B, "mmd"|"wasserstein" [, grad [, "superfidelity"|"uhlmann"]]) -> value [, dL/d conj(A)]
  Superfidelity kernel G(r, s) = Tr rs + sqrt((1 - Tr r^2)(1 - Tr s^2)), or the root Uhlmann
  fidelity Tr sqrt(sqrt(r) s sqrt(r)); MMD = mean G(A,A) + mean G(B,B) - 2 mean G(A,B);
  Wasserstein = exact OT with cost 1 - G, uniform weights. The gradient is a stack.]==],
  ["qd.protocols.msquddpm.betas"] = [==[msq.betas("linear"|"cosine"|"sq_cosine", T [, {from=, to=, s=0.001}]) -> {beta_1..beta_T}
  cosine: 1 - abar(t)/abar(t-1), abar = cos^2((t/T + s)/(1 + s) pi/2) normalised, clipped to
  [1e-4, 1]; sq_cosine: those squared; linear: from..to, or all 1 without from/to.]==],
  ["qd.progress"] = [==[local progress = require "qd.progress"
  p = progress.new{steps=, epochs=, total= [, quiet=, mode="auto"|"live"|"lines", every=10, out=, label=]};
  p:begin_step(i, t), p:update(epoch, loss), p:end_step(loss), p:message(text), p:finish().
  Live line (step, epoch, loss, it/s, ETA) on a terminal, plain lines every `every` s otherwise;
  QD_PROGRESS=live|lines|quiet overrides the mode.]==],
  ["qd.progress.new"] = [==[progress.new{steps=, epochs=, total= [, quiet=, mode=, every=, out=, label=, done=]} -> progress object]==],
  ["qd.data.gibbs"] = [==[qd.data.gibbs(H, beta) -> DensityMatrix exp(-beta H)/Z, ln Z (H a qd.PauliSum, <= 12 qubits).]==],
}

-- ------------------------------------------------------------------ methods
-- Keyed "qd.Type:method". Texts shared by several types are written once here; a method
-- missing from this list is a failure of tests/lua/test_help.lua. Gate methods (rx, cx, ...)
-- are documented from the gate table (M.gate_doc), not here.
local function def(keys, text)
  for _, k in ipairs(keys) do docs[k] = text end
end
local REG = { "qd.State", "qd.DensityMatrix", "qd.Ensemble" }
local function each(types, method)
  local keys = {}
  for i, t in ipairs(types) do keys[i] = t .. ":" .. method end
  return keys
end

-- State, DensityMatrix, Ensemble
def(each(REG, "apply"), docs["REG:apply"])
def(each(REG, "evolve"), docs["REG:evolve"])
docs["REG:apply"], docs["REG:evolve"] = nil, nil
def(each(REG, "unitary"), [==[obj:unitary(U, {q1, ..., qk}) -> obj: applies a 2^k x 2^k unitary (qd.Matrix or table of
  rows, k <= 12) in place; q1 is the most significant bit of U's index. Checked for
  unitarity (max |U^dagger U - I| <= 1e-8). On a DensityMatrix rho -> U rho U^dagger; on an
  Ensemble every member.]==])
def(each(REG, "save_npy"), [==[obj:save_npy(path) -> obj: writes a numpy .npy file atomically (temporary file + rename),
  raising on failure. State: shape (2^n,), Ensemble: (N, 2^n), DensityMatrix: (2^n, 2^n),
  complex128. Read back with qd.load_npy(path [, kind]).]==])
def(each(REG, "free"), [==[obj:free(): releases the buffer now (also at the end of `local x <close> = ...` and by the
  GC); idempotent. Using a freed object raises "qd.State has been freed" (etc.).]==])

docs["qd.State:copy"] = [==[s:copy() -> an independent qd.State with the same amplitudes.]==]
docs["qd.State:amp"] = [==[s:amp(i) | s:amp("0110") -> re, im of one amplitude (i the 1-based basis index; a
  bitstring of n characters, qubit 0 first).]==]
docs["qd.State:totable"] = [==[s:totable() -> {{re, im}, ...}: the 2^n amplitudes in basis order.]==]
docs["qd.State:vector"] = [==[s:vector() -> a complex qd.Vector copy of the 2^n amplitudes.]==]
docs["qd.State:norm"] = [==[s:norm() -> sqrt(<s|s>) (1 for a normalised state).]==]
docs["qd.State:normalize"] = [==[s:normalize() -> s, divided by its norm in place (an error for norm 0 or non-finite).]==]
docs["qd.State:inner"] = [==[s:inner(t) -> re, im of <s|t> (t a qd.State of the same size).]==]
docs["qd.State:probs"] = [==[s:probs([qubits]) -> qd.Vector of the 2^k outcome probabilities of the listed qubits (all
  by default); the first listed qubit is the most significant bit of the outcome index.]==]
docs["qd.State:sample"] = [==[s:sample(shots [, rng] [, {qubits={...}}]) -> {["0101"] = count, ...}
  shots computational-basis measurements (of the listed qubits, all by default, first
  listed = leftmost character) without changing s; counts of the outcomes seen.]==]
docs["qd.State:measure"] = [==[s:measure(qubits [, rng] [, {keep=true}]) -> outcome, probability, post-state
  Projective measurement of the listed qubits in the computational basis; outcome is a
  bitstring (first listed qubit first). keep=true (default) collapses s in place and
  renormalises it (post-state is s); keep=false leaves s unchanged and returns a new
  State on the unmeasured qubits. rng defaults to the run's generator.]==]
docs["qd.State:project"] = [==[s:project(qubits, "01" [, {keep=true}]) -> probability, post-state
  Projects onto a fixed outcome of the listed qubits (an error if its probability is 0):
  keep=true collapses s in place, keep=false returns a new State on the other qubits.]==]
docs["qd.State:expect"] = [==[s:expect("XZ", {0, 2}) | s:expect("XIZ") -> <psi|P|psi> for a Pauli string (letters I X Y
  Z, one per listed qubit, or one per qubit when no qubits are given).
  s:expect(H) with a qd.PauliSum H is H:expect(s).]==]
docs["qd.State:embed"] = [==[s:embed(na) -> a new State |0..0>_A (x) s: na ancillas as the most significant qubits.]==]
docs["qd.State:kron"] = [==[s:kron(x) -> the tensor product s (x) x, s's qubits first (qd.kron(s, x)): a State for a
  State, a DensityMatrix for a DensityMatrix.]==]
docs["qd.State:ptrace"] = [==[s:ptrace({kept qubits}) -> qd.DensityMatrix of the kept qubits (the first listed is the
  most significant), the others traced out.]==]
docs["qd.State:schmidt_rank"] = [==[s:schmidt_rank({qubits of A} [, tol=1e-10]) -> the number of Schmidt coefficients
  > tol across the cut A | rest.]==]
docs["qd.State:dm"] = [==[s:dm() -> qd.DensityMatrix |s><s| (qd.dm(s)).]==]
docs["qd.State:fidelity"] = [==[s:fidelity(x) -> qd.fidelity(s, x): |<s|x>|^2, or <s|rho|s> for a DensityMatrix x.]==]
docs["qd.State:trace_distance"] = [==[s:trace_distance(x) -> qd.trace_distance(s, x) = 1/2 ||rho - sigma||_1 (s as |s><s|).]==]
docs["qd.State:purity"] = [==[s:purity() -> Tr rho^2 of |s><s| (1 up to rounding; qd.purity(s)).]==]
docs["qd.State:entropy"] = [==[s:entropy() -> the von Neumann entropy of |s><s| (0 up to rounding; qd.entropy(s)).]==]

docs["qd.DensityMatrix:copy"] = [==[rho:copy() -> an independent qd.DensityMatrix with the same entries.]==]
docs["qd.DensityMatrix:get"] = [==[rho:get(i, j) -> re, im of entry (i, j) (1-based row and column).]==]
docs["qd.DensityMatrix:matrix"] = [==[rho:matrix() -> a complex 2^n x 2^n qd.Matrix copy of rho.]==]
docs["qd.DensityMatrix:trace"] = [==[rho:trace() -> Re Tr rho (a number).]==]
docs["qd.DensityMatrix:eigenvalues"] = [==[rho:eigenvalues() -> qd.Vector of the 2^n eigenvalues, ascending (LAPACK).]==]
docs["qd.DensityMatrix:probs"] = [==[rho:probs([qubits]) -> qd.Vector of the 2^k outcome probabilities of the listed qubits
  (all by default; first listed = most significant bit): the diagonal of the reduced state.]==]
docs["qd.DensityMatrix:sample"] = [==[rho:sample(shots [, rng] [, {qubits={...}}]) -> {["0101"] = count, ...}: shots
  measurements of the listed qubits (all by default) without changing rho.]==]
docs["qd.DensityMatrix:measure"] = [==[rho:measure(qubits [, rng] [, {keep=true}]) -> outcome, probability, post-state
  Samples an outcome (bitstring) of the listed qubits; keep=true (default) collapses rho in
  place to P rho P / p, keep=false returns a new DensityMatrix of the unmeasured qubits.]==]
docs["qd.DensityMatrix:expect"] = [==[rho:expect("XZ", {0, 2}) | rho:expect("XIZ") -> Tr(P rho) for a Pauli string.]==]
docs["qd.DensityMatrix:kron"] = [==[rho:kron(x) -> the DensityMatrix rho (x) x (a State x is promoted to |x><x|), rho's
  qubits first.]==]
docs["qd.DensityMatrix:block"] = [==[rho:block({kept qubits} [, bits]) -> qd.DensityMatrix <b|rho|b> of the kept
  qubits, unnormalised (trace = probability of b); bits: the other qubits' basis state as a
  string of '0'/'1' in their order (default all '0'). Also the gradient of rho -> rho (x) |b><b|.]==]
docs["qd.DensityMatrix:ptrace"] = [==[rho:ptrace({kept qubits}) -> qd.DensityMatrix of the kept qubits (first listed = most
  significant).]==]
docs["qd.DensityMatrix:fidelity"] = [==[rho:fidelity(x) -> qd.fidelity(rho, x): <x|rho|x> for a State x, the Uhlmann fidelity
  (Tr sqrt(sqrt(rho) x sqrt(rho)))^2 for a DensityMatrix x.]==]
docs["qd.DensityMatrix:trace_distance"] = [==[rho:trace_distance(x) -> 1/2 ||rho - sigma||_1 (a State x as |x><x|).]==]
docs["qd.DensityMatrix:purity"] = [==[rho:purity() -> Tr rho^2.]==]
docs["qd.DensityMatrix:entropy"] = [==[rho:entropy() -> -Tr rho ln rho (natural log; eigenvalues <= 0 contribute 0).]==]

docs["qd.Ensemble:get"] = [==[E:get(k) | E[k] -> a copy of member k (1-based) as a qd.State; k outside 1..N raises.]==]
docs["qd.Ensemble:set"] = [==[E:set(k, s) -> E: copies the State s (same n, normalised: checked) into member k.]==]
docs["qd.Ensemble:copy"] = [==[E:copy() -> an independent qd.Ensemble with the same members.]==]
docs["qd.Ensemble:norms"] = [==[E:norms() -> qd.Vector of the N member norms.]==]
docs["qd.Ensemble:states"] = [==[E:states() -> {s1, ..., sN}: a table of N qd.State copies of the members.]==]
docs["qd.Ensemble:overlaps"] = [==[E:overlaps([F]) -> N x M qd.Matrix of |<e_i|f_j>|^2 (F another Ensemble of the same n;
  default E itself, then only j >= i is computed and the result is exactly symmetric).]==]
docs["qd.Ensemble:fidelities"] = [==[E:fidelities(s) -> qd.Vector of |<s|e_k>|^2, k = 1..N.]==]
docs["qd.Ensemble:mean_dm"] = [==[E:mean_dm() -> qd.DensityMatrix (1/N) sum_k |e_k><e_k|, the ensemble's average state.]==]
docs["qd.Ensemble:measure"] = [==[E:measure(qubits [, rng] [, {keep=true}]) -> outcomes, probabilities, post-ensemble
  Every member measured with its own outcome (member k from substream k of a generator
  split off rng): outcomes a table of N bitstrings, probabilities a qd.Vector; keep=true
  collapses E in place (post is E), keep=false returns a new Ensemble on the unmeasured
  qubits.]==]
docs["qd.Ensemble:probs"] = [==[E:probs([qubits]) -> 2^k x N qd.Matrix of outcome probabilities, one column per member
  (first listed qubit = most significant bit).]==]
docs["qd.Ensemble:expect"] = [==[E:expect("XZ", {0, 2}) | E:expect("XIZ") -> qd.Vector of the N expectations <e_k|P|e_k>.]==]
docs["qd.Ensemble:embed"] = [==[E:embed(na) -> a new Ensemble, every member |0..0>_A (x) e_k with na ancillas as the most
  significant qubits.]==]

-- Vector and Matrix (one set of methods; lua_array.c)
for _, T in ipairs { "qd.Vector", "qd.Matrix" } do
  local v = T == "qd.Vector"
  docs[T .. ":get"] = v and [==[v:get(i) -> entry i (1-based): a number, or re, im for a complex vector (v[i] gives
  a number or an {re, im} pair, nil past the end).]==]
    or [==[M:get(i, j) -> entry (i, j) (1-based): a number, or re, im for a complex matrix.]==]
  docs[T .. ":set"] = v and [==[v:set(i, x) -> v: sets entry i (1-based) to x, a number or {re, im} (complex vectors
  only); also v[i] = x.]==]
    or [==[M:set(i, j, x) -> M: sets entry (i, j) (1-based) to x, a number or {re, im} (complex
  matrices only).]==]
  docs[T .. ":totable"] = v and [==[v:totable() -> {x1, x2, ...} (complex entries as {re, im} pairs).]==]
    or [==[M:totable() -> {{row 1}, {row 2}, ...} (complex entries as {re, im} pairs).]==]
  docs[T .. ":shape"] = v and [==[v:shape() -> n, 1 (a vector is one column).]==]
    or [==[M:shape() -> rows, cols.]==]
  local x = v and "v" or "M"
  docs[T .. ":is_complex"] = x .. ":is_complex() -> true if the entries are complex, false if real."
  docs[T .. ":sum"] = x .. ":sum() -> the sum of all entries: a number, or re, im if complex."
  docs[T .. ":mean"] = x .. ":mean() -> the mean of all entries: a number, or re, im if complex."
  docs[T .. ":copy"] = x .. ":copy() -> an independent " .. T .. " with the same entries."
  docs[T .. ":abs"] = x .. ":abs() -> a real " .. T .. " of the moduli |x_i| (same shape)."
  docs[T .. ":angle"] = x .. ":angle() -> a real " .. T .. " of the phases arg x_i = atan2(im, re) in [-pi, pi]."
  -- elementwise maths (lua_vmath.c): real arrays; a value outside the domain raises, naming the entry
  for _, f in ipairs { { "exp", "exp x_i" }, { "log", "log x_i (x_i > 0)" }, { "sqrt", "sqrt x_i (x_i >= 0)" },
                       { "tanh", "tanh x_i" }, { "atanh", "artanh x_i (-1 < x_i < 1)" }, { "sin", "sin x_i" },
                       { "cos", "cos x_i" }, { "sigmoid", "1 / (1 + exp(-x_i))" } } do
    docs[T .. ":" .. f[1]] = x .. ":" .. f[1] .. "() -> a new real " .. T .. " of " .. f[2] .. [==[, elementwise (real
  entries; one outside the domain raises an error naming it).]==]
  end
  docs[T .. ":clamp"] = x .. ":clamp(lo, hi) -> a new real " .. T .. " with every entry clamped to [lo, hi]."
  docs[T .. ":mul"] = x .. ":mul(w) -> the elementwise product with w (same shape, real) or a number (real " .. T .. ")."
  docs[T .. ":div"] = x .. ":div(w) -> the elementwise quotient by w (same shape, no zero entry) or a non-zero number."
  docs[T .. ":free"] = x .. [==[:free(): releases the buffer now (also with <close> and the GC); idempotent;
  using it afterwards raises.]==]
  docs[T .. ":save_npy"] = x .. ":save_npy(path) -> " .. x .. [==[: writes a numpy .npy file atomically (float64 or
  complex128; shape ]==] .. (v and "(n,)" or "(rows, cols)") .. "); raises on failure."
end

docs["qd.Matrix:dagger"] = [==[M:dagger() -> the conjugate transpose (a new qd.Matrix).]==]
docs["qd.Matrix:trace"] = [==[M:trace() -> re, im of the trace of a square matrix.]==]
docs["qd.Matrix:eigh"] = [==[M:eigh() -> w (ascending real qd.Vector), V (complex qd.Matrix, eigenvectors as
  columns) of a Hermitian M (LAPACK; up to 4096 x 4096). Other matrices are refused.]==]

docs["qd.Rng:uniform"] = [==[r:uniform([a, b [, n]]) -> a number uniform in [a, b) (default [0, 1)), or with n a
  qd.Vector of n draws.]==]
docs["qd.Rng:normal"] = [==[r:normal([mu, sigma [, n]]) -> a number ~ N(mu, sigma^2) (default N(0, 1)), or with n a
  qd.Vector of n draws.]==]
docs["qd.Rng:integer"] = [==[r:integer(lo, hi) -> an integer uniform in [lo, hi] (both included; no modulo bias).]==]
docs["qd.Rng:split"] = [==[r:split() -> a new, independent generator; advances r (so the next split differs).]==]
docs["qd.Rng:substream"] = [==[r:substream(k) -> the k-th substream (k >= 0) of r as a new generator; does not advance r,
  so r:substream(k) is the same stream every time.]==]
docs["qd.Rng:seed"] = [==[r:seed() -> the seed of the root generator (also for generators split or substreamed off it).]==]

docs["qd.Schedule:values"] = [==[s:values() -> qd.Vector of v_1..v_T.]==]
docs["qd.Schedule:totable"] = [==[s:totable() -> {kind=, T=, <parameters>, [clip=], [parts=], values={...}}: plain data
  for run records and JSON; qd.schedule.from(s:totable()) == s bitwise.]==]

docs["qd.PauliSum:evolve"] = [==[H:evolve(obj, t [, opts]) -> obj [, stats]: obj:evolve(H, t [, opts]) (help("qd.State:evolve")).]==]
docs["qd.PauliSum:free"] = [==[H:free(): releases the operator (and its cached eigen-decomposition) now; idempotent.]==]

docs["qd.Channel:apply"] = [==[ch:apply(obj [, targets] [, rng] [, {branches=true}]) -> obj [, branches]
  obj:apply(ch, ...) (help("qd.DensityMatrix:apply")): exact on a DensityMatrix, sampled
  trajectories on a State or Ensemble.]==]
docs["qd.Channel:free"] = [==[ch:free(): releases the channel now (also with <close> and the GC); idempotent; a freed
  channel raises "qd.Channel has been freed".]==]

-- qd.image (lua_image.c, image.c) and qd.data.digits (digits.lua); docs/api.md "Images (QDDM)"
docs["qd.image"] = [==[qd.image: small images as the columns of a real qd.Matrix (one pixel per row, row-major
  pixels), for image diffusion (QDDM, arXiv 2401.07049; qd.protocols.qddm): encode (amplitude
  encoding into an Ensemble), readout / readout_vjp (the clamped Born read-out and its gradient
  for c:grad), diffuse (the noising chain), clamp, tanh_map / tanh_map_vjp (weights to angles),
  decode / amp_mse (training on states), psnr, ssim. The data: qd.data.digits.]==]
docs["qd.image.encode"] = [==[qd.image.encode(X [, {qubits=, pad=0, angles=}]) -> Ensemble, norms (qd.Vector)
  Member j = column j of X (D x N) padded with pad to 2^ceil(log2 D) entries, divided by its
  norm (norms[j]). angles (a qd.Vector of N) adds one trailing ancilla qubit in RX(angle_j)|0>
  (QDDM's label-directed Q-Dense). qubits: more qubits than needed (zero amplitudes). A zero
  image is an error.]==]
docs["qd.image.readout"] = [==[qd.image.readout(E [, {rows=, first=1, stride=1, scale=rows, gain=1, offset=0}]) -> Y
  Y (rows x #E): y_i = gain clamp(scale p_(first + (i-1) stride), 0, 1) + offset, p = |psi|^2 of
  each member (1-based basis positions). Q-Dense: scale 64; directed (ancilla last): stride 2;
  the noise goal's (y - 0.5) 0.1: gain 0.1, offset -0.05.]==]
docs["qd.image.readout_vjp"] = [==[qd.image.readout_vjp(E, dLdY [, opts]) -> G (Ensemble): dL/d conj(psi)
  The Born chain rule through readout (same opts): G = gain scale dLdY psi inside the clamp's
  range (ends included, as torch.clamp), 0 elsewhere. A c:grad loss function returns it:
  function(out) local Y = qd.image.readout(out, o); local l, g = qd.nn.mse(Y, T, {grad = true});
  return l, qd.image.readout_vjp(out, g, o) end.]==]
docs["qd.image.diffuse"] = [==[qd.image.diffuse(X0, eps, w) -> Xin, Xprev (D x N T)
  QDDM's noising: x_t = clamp((1 - w_t) x0 + w_t eps, 0, 1) for t = 1..T (w holds w_0..w_T; eps
  D x N, or a vector of D N entries); column (j-1) T + t holds x_t (Xin) and x_(t-1) (Xprev) of
  image j.]==]
docs["qd.image.clamp"] = [==[qd.image.clamp(X [, {scale=1, offset=0, lo=0, hi=1}]) -> clamp(scale X + offset, lo, hi)
  entrywise, a new real Matrix (or Vector) of X's shape.]==]
docs["qd.image.decode"] = [==[qd.image.decode(E, norms [, {rows=2^n}]) -> Y: y_ij = norms[j] |psi_ij| (rows x #E)
  The image read out of a state-trained model (single sampling).]==]
docs["qd.image.amp_mse"] = [==[qd.image.amp_mse(E, T, norms [, {grad = true}]) -> L [, G]
  The reference's loss on states: L = mean over the rows of T and the members of
  |norms_j psi_ij - T_ij|^2 (T real, at most 2^n rows); G = dL/d conj(psi) for c:grad.]==]
docs["qd.image.psnr"] = [==[qd.image.psnr(X, Y [, {range=1}]) -> mean, per-image qd.Vector
  Peak signal-to-noise ratio 10 log10(range^2 / MSE) of every column pair (inf if equal).]==]
docs["qd.image.ssim"] = [==[qd.image.ssim(X, Y [, {width=sqrt(rows), window=7, range=1}]) -> mean, per-image Vector
  Structural similarity as scikit-image's structural_similarity computes it by default:
  window x window uniform window (odd, at most the image), sample covariance, K1 = 0.01,
  K2 = 0.03, averaged over the windows inside the image (an 8x8 image has 2x2 of them).]==]
docs["qd.image.tanh_map"] = [==[qd.image.tanh_map(w [, {scale = pi}]) -> qd.Vector scale tanh(w) entrywise
  (QDDM's weight map, the reference's qw_map.tanh: angles in (-scale, scale)).]==]
docs["qd.image.tanh_map_vjp"] = [==[qd.image.tanh_map_vjp(w, g [, {scale = pi}]) -> dL/dw = g scale (1 - tanh(w)^2)
  (the chain rule of tanh_map for a gradient g with respect to the angles).]==]
docs["qd.data.digits"] = [==[qd.data.digits{n_classes=10, ds_size=all, train_fraction=0.8, path=, rng=, fallback=true,
  generated=false} -> {train, test (64 x N qd.Matrix, grey levels / 16), train_classes, test_classes
  (tables), train_labels, test_labels (qd.Vector: class / largest class), source, note, path}
  The 8x8 handwritten digits (1797) from Debian's python3-sklearn (digits.csv.gz, read with
  zlib): classes 0..n_classes-1 in file order, the first ds_size, shuffled by rng if given, the
  first floor(0.8 ds_size) train. Without the file: generated digit glyphs (source "generated",
  note says why); fallback = false makes that an error.]==]

docs["qd.protocols.qddm"] = [==[local qddm = require "qd.protocols.qddm"
  Image diffusion with quantum denoisers (QDDM, arXiv 2401.07049): qddm.run{...} trains one
  denoiser (Q-Dense, its label-directed and re-uploading variants, the single-sampling model on
  states, or a dense baseline) on image matrices (qd.data.digits) and writes a run directory
  (run.json, params.npy, loss.npy, denoised.npy, generated.npy; samples.png and denoise.png
  with gnuplot); qddm.weights, qddm.pairs, qddm.matrix_power, qddm.power_check, qddm.pieces.]==]
docs["qd.protocols.qddm.run"] = [==[qddm.run{data=, epochs= [, model="qdense"|"qdense_directed"|"qdense_reupload"|"single_step"|
  "dense"|"dense_directed", layers=55, reuploads=2, hidden=, goal="noise"|"data", T=10, batch=10, lr=1e-4,
  init_scale=0.4, samples=8, pictures=true, seed=1, out=, resume=, ckpt_every=0, stop_after=0, quiet=,
  progress=, options=, name="qddm"]} -> {dir, stopped, metrics, settings, params, losses, timing,
  outputs, pictures}
  x_t = clamp((1 - w_t) x0 + w_t eps, 0, 1), eps ~ N(0.5, 0.2^2), w_t = (t/T)^3; one Adam step
  per batch of `batch` images x T pairs on the exact gradient. metrics: mse, psnr, ssim
  (denoising the test images from x_T), gen_mse, gen_psnr, gen_ssim (generated digits against
  the nearest training image), nparams, loss, seconds; single_step also unitary_power_error,
  power_seconds, chain_seconds.]==]
docs["qd.protocols.qddm.weights"] = [==[qddm.weights(T) -> qd.Vector w_0..w_T, w_t = (t/T)^3 (the reference's decay 3).]==]
docs["qd.protocols.qddm.pairs"] = [==[qddm.pairs(X0, eps, T, goal) -> inputs x_t, targets (x_(t-1) for "data",
  x_t - x_(t-1) for "noise"), 64 x N T matrices (qd.image.diffuse).]==]
docs["qd.protocols.qddm.matrix_power"] = [==[qddm.matrix_power(U, t) -> U^t (t >= 1, repeated squaring of a qd.Matrix).]==]
docs["qd.protocols.qddm.power_check"] = [==[qddm.power_check(c, m, w, X [, reps]) -> max amplitude difference, seconds of
  U^T (c:unitary, squarings, one apply), seconds of T circuit runs: the single-sampling model's
  two ways of sampling T steps on the images X.]==]
docs["qd.protocols.qddm.dense_width"] = [==[qddm.dense_width(P [, n0=64]) -> the hidden width h of n0 -> h -> 64 whose
  parameter count (n0 + 65) h + 64 is closest to P from below (at least 1).]==]

-- qd.nn (lua_nn.c, nn.c); docs/api.md "Neural networks"
docs["qd.nn"] = [==[qd.nn: small dense networks for the classical parts of protocols (denoisers, baselines).
  net = qd.nn.mlp{sizes = {n0, ..., nL}, activation = "relu", output = "linear"}; parameters are a
  real qd.Vector you own (net:init(rng)), batches real qd.Matrix values with one sample per column;
  net:forward, net:grad (with qd.optim.adam), net:vjp; qd.nn.mse, qd.nn.columns, qd.nn.vstack.
  qd.nn.conv{...}: a residual 1-D convolution over the time steps of a sequence, optionally with
  self-attention over all steps in every block (heads =; same methods).]==]
docs["qd.nn.mlp"] = [==[qd.nn.mlp{sizes = {n0, n1, ..., nL} [, activation = "relu"] [, output = "linear"]} -> qd.MLP
  A multilayer perceptron: A_0 = X, A_l = act(W_l A_(l-1) + b_l); hidden layers use `activation`,
  the last `output` (each one of linear, relu, tanh, sigmoid, silu). Parameters, layer by layer:
  W_l (n_l x n_(l-1), column-major) then b_l (n_l).]==]
docs["qd.nn.conv"] = [==[qd.nn.conv{length = G, inputs = c, channels = H, outputs = o [, kernel = 3] [, layers = 2]
           [, cond = 0] [, activation = "silu"] [, heads = 0]} -> qd.ConvNet
  A network with a sequence bias over G time steps. An input column: G steps of c features (step t
  in rows t*c+1 ... t*c+c), then cond condition features shared by all steps (class, time); an
  output column: G steps of o features. a_t = W_in x_t + b_in + p_t; then `layers` residual blocks
  z_t = sum_j C_j a_(t+j-r) + b_c + U cond (odd kernel k = 2r+1 <= 2G-1, zero padding),
  a_t += W_o act(z_t) + b_o; y_t = W_out a_t + b_out. Parameters: W_in, b_in, P (H x G), per block
  C (H x kH), b_c, U (H x cond), W_o, b_o, then W_out, b_out (column-major). Methods as qd.MLP's:
  nparams, init (U(-1/sqrt(fan_in), 1/sqrt(fan_in)) per matrix), forward, grad, vjp, spec.
  heads = n > 0 (a divisor of H): each block first applies self-attention over all G steps
  (arXiv 1706.03762; no normalisation, no mask): [q; k; v]_t = W_qkv a_t + b_qkv, per head of
  d = H/n features P_ts = softmax_s(q_t . k_s / sqrt(d)), o_t = sum_s P_ts v_s, m_t = a_t + W_a o_t
  + b_a; the block's convolution and residual then read m_t for a_t. W_qkv (3H x H), b_qkv, W_a
  (H x H), b_a open the block's parameters. kernel = 1 with heads makes a norm-free transformer.]==]
docs["qd.nn.mse"] = [==[qd.nn.mse(Y, T [, {grad = true}]) -> L [, G]
  Mean squared error over all entries (PyTorch's MSELoss); G = dL/dY = 2 (Y - T) / #entries.]==]
docs["qd.nn.columns"] = [==[qd.nn.columns(M, idx) -> the columns idx (a list of 1-based numbers, repeats allowed) of M
  as a new qd.Matrix: a mini-batch of samples.]==]
docs["qd.nn.vstack"] = [==[qd.nn.vstack(A, B, ...) -> a qd.Matrix with the rows of A, then of B, ... (equal column
  counts; complex when any is): inputs with a condition or label appended.]==]
docs["qd.MLP"] = [==[qd.MLP: a dense network's shape (made by qd.nn.mlp); its parameters are a separate qd.Vector.
  Results do not depend on the thread count (fixed blocks of single-threaded BLAS).]==]
docs["qd.MLP:nparams"] = [==[net:nparams() -> number of parameters (sum of n_l (n_(l-1) + 1)).]==]
docs["qd.MLP:init"] = [==[net:init([rng]) -> parameters (real qd.Vector), PyTorch's nn.Linear default:
  W and b uniform in (-1/sqrt(n_in), 1/sqrt(n_in)), drawn layer by layer from rng (the run's without).]==]
docs["qd.MLP:forward"] = [==[net:forward(X, params) -> Y  (X: n0 x B real qd.Matrix, Y: nL x B)]==]
docs["qd.MLP:grad"] = [==[net:grad(X, params, lossfn) -> L, dL/dparams (qd.Vector), Y
  Runs the network, calls lossfn(Y) -> L, dL/dY (nL x B qd.Matrix), and backpropagates: the feval
  of qd.optim.adam is function(p) return net:grad(X, p, lossfn) end.]==]
docs["qd.MLP:vjp"] = [==[net:vjp(X, params, G) -> dL/dparams (qd.Vector), dL/dX (qd.Matrix)
  The backward pass for a given G = dL/dY (for chaining a network into a larger gradient).]==]
docs["qd.MLP:spec"] = [==[net:spec() -> {sizes =, activation =, output =}: plain data for a run record;
  qd.nn.mlp(spec) rebuilds the network.]==]
docs["qd.ConvNet"] = [==[qd.ConvNet: a residual 1-D convolution network's shape (made by qd.nn.conv); its parameters
  are a separate qd.Vector. Results do not depend on the thread count.]==]
docs["qd.ConvNet:nparams"] = [==[net:nparams() -> H (c + 1 + G) + layers (H (kH + 1) + H cond + H (H + 1)
  [+ 4 H (H + 1) with heads]) + o (H + 1).]==]
docs["qd.ConvNet:init"] = [==[net:init([rng]) -> parameters (real qd.Vector), PyTorch's nn.Linear / nn.Conv1d default:
  uniform in (-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = c for W_in, b_in, P; kH for C, b_c; cond for
  U; H for the rest (the attention's included); drawn in parameter order from rng (the run's without).]==]
docs["qd.ConvNet:forward"] = [==[net:forward(X, params) -> Y  (X: (G c + cond) x B real qd.Matrix, Y: G o x B)]==]
docs["qd.ConvNet:grad"] = [==[net:grad(X, params, lossfn) -> L, dL/dparams (qd.Vector), Y
  As qd.MLP:grad: lossfn(Y) -> L, dL/dY (G o x B qd.Matrix), then backpropagation.]==]
docs["qd.ConvNet:vjp"] = [==[net:vjp(X, params, G) -> dL/dparams (qd.Vector), dL/dX (qd.Matrix, steps and condition rows)]==]
docs["qd.ConvNet:spec"] = [==[net:spec() -> {length =, inputs =, channels =, outputs =, kernel =, layers =, cond =,
  activation =, heads =}: plain data for a run record; qd.nn.conv(spec) rebuilds the network.]==]

-- qd.tokens, qd.synth (tokens.lua, synth.lua, lua_synth.c, synth.c); docs/api.md "Circuit synthesis"
docs["qd.tokens"] = [==[qd.tokens: circuits as genQC token tensors (arXiv 2311.02041).
  A tensor is a real n x G qd.Matrix (row q + 1 = qubit q, column = time step): +v where qubit q is
  a target of the gate with vocabulary index v, -v where a control, 0 empty, the padding token
  V + 1 in whole columns after the end; one gate per column. Angles (multimodal): a P x G matrix,
  angle mod 4 pi mapped to [-1, 1). A batch of B circuits is an n*G x B matrix (entry (q, t) of
  circuit b at row q + n*t + 1); .npy files hold genQC's shape (B, n, G).
  encode, decode, random, column, stack, load, save, padding, nparams, angle_token, vocabularies.]==]
docs["qd.tokens.vocabularies"] = [==[qd.tokens.vocabularies: the paper's vocabularies, by name:
  srv = {h, cx} (entanglement model), compile = {h, cx, z, x, ccx, swap} (unitary compilation),
  multimodal = {h, cx, ccx, swap, rx, ry, rz, cp}. Options `vocab` take a name or a table of gates.]==]
docs["qd.tokens.vocabularies.srv"] = [==[qd.tokens.vocabularies.srv = {"h", "cx"}]==]
docs["qd.tokens.vocabularies.compile"] = [==[qd.tokens.vocabularies.compile = {"h", "cx", "z", "x", "ccx", "swap"}]==]
docs["qd.tokens.vocabularies.multimodal"] = [==[qd.tokens.vocabularies.multimodal = {"h", "cx", "ccx", "swap", "rx", "ry", "rz", "cp"}]==]
docs["qd.tokens.encode"] = [==[qd.tokens.encode(circuit [, {vocab = "srv", max_gates = #ops, pad = true, params =}]) -> T [, P]
  T: n x max_gates token matrix; P: the angle tokens (P x max_gates) when the vocabulary has
  parametrised gates. Controls (-v) and targets (+v) follow Qiskit (cx 1 + 1, ccx 2 + 1, swap 0 + 2,
  cp 1 + 1); params: values of the circuit's parameter slots. Raises for ops outside the vocabulary.]==]
docs["qd.tokens.decode"] = [==[qd.tokens.decode(T [, P], {vocab = "srv"}) -> qd.Circuit | nil, reason
  Reasons name the column: "control without target", "two gates in one column", "unknown token",
  "not an integer", "gate cx needs 1 control and 1 target", "padding token mixed with other tokens",
  "a gate after the padding". Empty columns are skipped; angles (x + 1) 2 pi.]==]
docs["qd.tokens.random"] = [==[qd.tokens.random(n, G, vocab, B [, rng] [, {min_gates = 1, max_gates = G, pad = true}]) -> batch [, P]
  B random circuits as genQC draws them: gate count uniform in min_gates ... max_gates, gates and
  distinct qubits uniform, angles uniform in [0, 4 pi). Circuit b from substream b of a generator
  split off rng (results independent of B).]==]
docs["qd.tokens.column"] = [==[qd.tokens.column(batch, b, n) -> circuit b of a batch as an n x G matrix]==]
docs["qd.tokens.stack"] = [==[qd.tokens.stack({T1, T2, ...}) -> a batch (n*G x B) of equal-shaped token matrices]==]
docs["qd.tokens.load"] = [==[qd.tokens.load(path) -> batch, n, G | nil, message: a (B, n, G) or (n, G) .npy (any real dtype)]==]
docs["qd.tokens.save"] = [==[qd.tokens.save(path, batch, n): the batch as a (B, n, G) float64 .npy (angle tokens: n = P)]==]
docs["qd.tokens.padding"] = [==[qd.tokens.padding(vocab) -> the padding token, #vocab + 1]==]
docs["qd.tokens.nparams"] = [==[qd.tokens.nparams(vocab) -> P, the most angles of a gate of the vocabulary]==]
docs["qd.tokens.angle_token"] = [==[qd.tokens.angle_token(a) -> (a mod 4 pi - 2 pi) / 2 pi, genQC's angle token in [-1, 1)]==]
docs["qd.tokens.vocab_of"] = [==[qd.tokens.vocab_of(v, k, fname) -> the gate list of a vocabulary name or table, checked
  (errors as bad argument #k to fname)]==]
docs["qd.synth"] = [==[qd.synth: data and evaluation for circuit synthesis (genQC, arXiv 2311.02041).
  srv (Schmidt-rank vectors), distance, infidelity, compiles, reverse_qubits, dataset, save_dataset,
  evaluate (valid, accuracy, per class, gate counts, unique, novel in one call; C underneath).]==]
docs["qd.synth.srv"] = [==[qd.synth.srv(x [, {tol = 1e-8, params =}]) -> ranks, smallest eigenvalues
  Schmidt rank of each qubit against the rest (ranks[q + 1], 1 or 2: 2 when the reduced state's
  smaller eigenvalue exceeds tol). x: qd.State, qd.Circuit (its output from |0...0>) or qd.Ensemble
  (then an n x N matrix of ranks).]==]
docs["qd.synth.distance"] = [==[qd.synth.distance(U, V) -> 1/2 ||U - V||_F^2 (matrices, tables of rows or circuits)]==]
docs["qd.synth.infidelity"] = [==[qd.synth.infidelity(U, V) -> 1 - |Tr(V^dagger U)/d|^2, free of a global phase]==]
docs["qd.synth.compiles"] = [==[qd.synth.compiles(circuit, U [, tol = 1e-3 [, params]]) -> ok, infidelity: infidelity < tol]==]
docs["qd.synth.reverse_qubits"] = [==[qd.synth.reverse_qubits(U) -> U with the qubit order reversed: Qiskit's (and genQC's)
  little-endian unitaries <-> qd's (qubit 0 the most significant bit).]==]
docs["qd.synth.label"] = [==[qd.synth.label(ranks) -> "[2,1,2]", the class name of an SRV]==]
docs["qd.synth.dataset"] = [==[qd.synth.dataset{qubits =, max_gates =, samples = [, min_gates = 1, vocab = "srv", label = "srv"|"unitary",
  dedup = "tokens"|"unitary"|false, balance = true, per_class =, seed = 1 | rng =]} -> ds
  genQC's recipe: random circuits, labelled by SRV (or unitary), de-duplicated (canonical tokens, or
  unitary up to a global phase), balanced (each SRV class cut to the smallest, or per_class), shuffled.
  ds: tokens (batch), params, srv (n x B), labels, names (classes), classes (counts), unitaries
  (label "unitary": d*d x B), generated, unique.]==]
docs["qd.synth.save_dataset"] = [==[qd.synth.save_dataset(dir, ds): tokens.npy (B, n, G), srv.npy (B, n), params.npy,
  unitaries.npy (B, d*d, 1; column-major) as present]==]
docs["qd.synth.evaluate"] = [==[qd.synth.evaluate(batch, {qubits = [, vocab = "srv", target = "srv"|"unitary", srv = ranks | n x B,
  unitary = U | d*d x B, train = batch, params =, tol = 1e-3, srv_tol = 1e-8]}) -> table
  valid_fraction, accuracy (correct / all), per_class[label] = {n, correct, accuracy}, gates_mean,
  gates_min, gates_max, gates_hist, unique_fraction (distinct correct / correct), novel_fraction
  (correct not in train / correct; nil without train), count, correct.]==]

M.docs = docs

-- the types, in the order help lists them; a method name shared by several types is looked
-- up in this order (help("measure") shows qd.State:measure first)
M.types = { "qd.State", "qd.DensityMatrix", "qd.Ensemble", "qd.Circuit", "qd.Tape", "qd.PauliSum",
            "qd.Channel", "qd.Schedule", "qd.Vector", "qd.Matrix", "qd.Rng", "qd.MLP",
            "qd.ConvNet", "qd.DistState" }
-- types whose gate methods are the gate table's (circuits add the gate as an op instead)
local gate_types = { ["qd.State"] = true, ["qd.DensityMatrix"] = true, ["qd.Ensemble"] = true,
                     ["qd.Circuit"] = true, ["qd.DistState"] = true }

-- the doc of gate `name` (g = qd.gates()[name]) as a method of type tname (nil: registers)
-- the stdlib modules loaded with require whose functions have entries "module.name"
M.modules = { "qd.protocols.quddpm", "qd.protocols.qgdm", "qd.protocols.qddm", "qd.protocols.genqc", "qd.protocols.msquddpm", "qd.protocols.qcbm", "qd.protocols.reverse_diffusion", "qd.progress" }

function M.gate_doc(name, g, tname)
  local qs, ps = {}, {}
  for i = 1, g.qubits do qs[i] = "q" .. (i - 1) end
  for i = 1, g.params do ps[i] = "theta" .. (g.params > 1 and i or "") end
  local args = table.concat(qs, ", ") .. (g.params > 0 and (", " .. table.concat(ps, ", ")) or "")
  if tname == "qd.Circuit" then
    return string.format("c:%s(%s) -> c: adds the gate as an op.\n  %s%s", name, args, g.doc,
      g.params > 0 and "\n  Each angle: a number (fixed), a slot name, {slot [, scale=, offset=]}, or omitted (a new slot)." or "")
  end
  return string.format("obj:%s(%s) -> obj\n  %s\n  On an Ensemble an angle may be a qd.Vector of per-member angles.",
                       name, args, g.doc)
end

-- the first line of a doc, for one-line listings
function M.summary(text)
  return (text:match("^[^\n]*"))
end

-- where a docs key belongs in docs/reference.md: the type ("qd.State" for "qd.State:copy"),
-- a table with entries of its own ("qd.random" for itself and "qd.random.dm"), or "qd"
function M.group(key, keys)
  local t = key:match("^(qd%.%u[%w_]*):") or key:match("^(qd%.%u[%w_]*)$")
  if t then return t end
  for other in pairs(keys) do
    if other:sub(1, #key + 1) == key .. "." then return key end
  end
  local parent = key:match("^(.*)%.[^.]+$")
  return parent or key
end

local function wrap_words(words, first, indent, width)
  local lines, line = {}, first
  for _, w in ipairs(words) do
    if #line + 1 + #w > width and line ~= first then
      lines[#lines + 1] = line
      line = indent .. w
    else
      line = line .. " " .. w
    end
  end
  lines[#lines + 1] = line
  return table.concat(lines, "\n")
end

function M.make(qd, core)
  local gates = core.gates()

  -- name -> value, following dots from qd ("qd.random.dm" -> qd.random.dm)
  local function resolve(name)
    if name == "qd" then return qd end
    local v = qd
    for part in (name:match("^qd%.(.*)$") or ""):gmatch("[^.]+") do
      if type(v) ~= "table" then return nil end
      v = rawget(v, part)
    end
    return name:match("^qd%.") and v or nil
  end

  -- the metatable of each type: qd.core.metatables where it is listed, else from a small
  -- object of the type (built once, on the first help call)
  local mts
  local function metatables()
    if mts then return mts end
    mts = {}
    for name, mt in pairs(core.metatables or {}) do mts[name] = mt end
    local samples = {
      ["qd.State"] = function() return qd.state(1) end,
      ["qd.DensityMatrix"] = function() return qd.dm(1) end,
      ["qd.Ensemble"] = function() return qd.ensemble(1, 1) end,
      ["qd.Vector"] = function() return qd.vector(1) end,
      ["qd.Matrix"] = function() return qd.matrix(1, 1) end,
      ["qd.Rng"] = function() return qd.rng(0) end,
      ["qd.Circuit"] = function() return qd.circuit(1) end,
      ["qd.Tape"] = function() local _, t = qd.circuit(1):forward(qd.state(1)); return t end,
      ["qd.PauliSum"] = function() return qd.pauli_sum("Z") end,
      ["qd.Channel"] = function() return qd.channel.dephasing { p = 0 } end,
      ["qd.Schedule"] = function() return qd.schedule.from { 0.5 } end,
      ["qd.MLP"] = function() return qd.nn.mlp { sizes = { 1, 1 } } end,
      ["qd.ConvNet"] = function() return qd.nn.conv { length = 2, inputs = 1, channels = 1, outputs = 1 } end,
    }
    for _, t in ipairs(M.types) do
      if mts[t] == nil then
        local ok, obj = pcall(samples[t])
        if ok then mts[t] = getmetatable(obj) end
      end
    end
    return mts
  end

  local function methods_of(t)
    local mt = metatables()[t]
    local names = {}
    if type(mt) == "table" and type(mt.methods) == "table" then
      for k in pairs(mt.methods) do names[#names + 1] = k end
    end
    table.sort(names)
    return names, mt
  end

  -- value -> the names it has (module functions and tables first, shallow names first, then
  -- the methods of each type in M.types order), built on the first call
  local byvalue
  local function names_of(x)
    if not byvalue then
      byvalue = {}
      local function add(v, name)
        if type(v) == "function" or type(v) == "table" then
          byvalue[v] = byvalue[v] or {}
          table.insert(byvalue[v], name)
        end
      end
      local queue, seen = { { qd, "qd" } }, { [qd] = true }
      add(qd, "qd")
      local head = 1
      while queue[head] do   -- breadth first: qd.haar_state before qd.random.state
        local t, prefix = queue[head][1], queue[head][2]
        head = head + 1
        local keys = {}
        for k in pairs(t) do if type(k) == "string" then keys[#keys + 1] = k end end
        table.sort(keys)
        for _, k in ipairs(keys) do
          local v, name = t[k], prefix .. "." .. k
          add(v, name)
          if type(v) == "table" and not seen[v] then
            seen[v] = true
            queue[#queue + 1] = { v, name }
          end
        end
      end
      for _, t in ipairs(M.types) do
        local names, mt = methods_of(t)
        for _, m in ipairs(names) do add(mt.methods[m], t .. ":" .. m) end
      end
    end
    if byvalue[x] == nil then   -- stdlib modules loaded with require (not under qd)
      for _, mname in ipairs(M.modules) do
        local mod = package.loaded[mname]
        if type(mod) == "table" then
          if mod == x and docs[mname] then return { mname } end
          for k, v in pairs(mod) do
            if v == x and docs[mname .. "." .. k] then return { mname .. "." .. k } end
          end
        end
      end
    end
    return byvalue[x]
  end

  -- the text for a docs key or a method/gate name; nil if there is none
  local function text_of(name)
    if docs[name] then return docs[name] end
    local t, m = name:match("^(qd%.%u[%w_]*)[:.]([%w_]+)$")
    if t then
      if docs[t .. ":" .. m] then return docs[t .. ":" .. m] end
      if gates[m] and gate_types[t] then
        local _, mt = methods_of(t)
        if mt == nil or mt.methods == nil or mt.methods[m] then return M.gate_doc(m, gates[m], t) end
      end
    end
    return nil
  end

  -- one line per entry of a table: "  name   summary"
  local function listing(tbl, prefix)
    local keys = {}
    for k in pairs(tbl) do if type(k) == "string" then keys[#keys + 1] = k end end
    table.sort(keys)
    local lines = {}
    for _, k in ipairs(keys) do
      local name = prefix .. "." .. k
      local doc = text_of(name)
      local sum = doc and M.summary(doc) or "(no documentation)"
      local line = "    " .. (sum:sub(1, #name) == name and sum or (name .. ": " .. sum))
      if #line > 110 then line = line:sub(1, 107) .. "..." end
      lines[#lines + 1] = line
    end
    return table.concat(lines, "\n")
  end

  local function type_text(t)
    local names = methods_of(t)
    local plain, gs = {}, {}
    for _, m in ipairs(names) do
      if gates[m] and gate_types[t] then gs[#gs + 1] = m else plain[#plain + 1] = m end
    end
    local out = docs[t] .. "\n" .. wrap_words(plain, "  methods:", "           ", 96)
    if #gs > 0 then out = out .. "\n" .. wrap_words(gs, "  gates:", "         ", 96) end
    return out .. '\n  help("' .. t .. ':NAME") documents one method.'
  end

  -- the full text help prints for a name (string) or value; nil if undocumented
  local function lookup(x)
    if type(x) == "string" then
      local name = x
      local bare = name ~= "qd" and not name:match("^qd%.")
      if bare and (docs["qd." .. name] or name:match("^%u[%w_]*[:.]")) then name = "qd." .. name end
      if docs[name] and name:match("^qd%.%u[%w_]*$") and metatables()[name] then return type_text(name) end
      local text = text_of(name)
      if text then
        local v = resolve(name)
        if type(v) == "table" then text = text .. "\n  entries:\n" .. listing(v, name) end
        return text
      end

      -- a bare method or gate name: gates first (as on every register type), then the
      -- types that have a method of that name
      if name:match("^[%w_]+$") then
        if gates[name] then return M.gate_doc(name, gates[name]) end
        local found = {}
        for _, t in ipairs(M.types) do
          if docs[t .. ":" .. name] then found[#found + 1] = t .. ":" .. name end
        end
        if #found > 0 then
          local text = docs[found[1]]
          if #found > 1 then
            local also = {}
            for i = 2, #found do also[#also + 1] = 'help("' .. found[i] .. '")' end
            text = text .. "\n  also: " .. table.concat(also, ", ")
          end
          return text
        end
      end
      return nil
    end
    local names = names_of(x)
    if names then
      local text = text_of(names[1]) or (names[1] == "qd" and docs.qd)
      if text then
        if type(x) == "table" then text = text .. "\n  entries:\n" .. listing(x, names[1]) end
        if #names > 1 then
          local also = {}
          for i = 2, #names do also[#also + 1] = names[i] end
          text = text .. "\n  (the same function: " .. table.concat(also, ", ") .. ")"
        end
        return text
      end
    end
    local t = qd.type(x)
    if docs[t] and metatables()[t] then return type_text(t) end
    return nil
  end
  M.lookup = lookup

  local function helpfn(...)
    if select("#", ...) == 0 then
      print([==[qd — quantum generative modelling in Lua. Objects: qd.State, qd.DensityMatrix,
qd.Ensemble, qd.Circuit, qd.PauliSum, qd.Channel, qd.Schedule, qd.Vector, qd.Matrix, qd.Rng.
help(qd) lists the library, help(qd.random) a module; help(qd.state), help(qd.load_npy)
document a function; help(obj) or help("qd.State") a type and its methods;
help(s.measure) or help("qd.State:measure") a method; help("rx") a gate.
Conventions: qubit 0 is the most significant bit; rotations exp(-i theta P / 2);
collections are 1-based (E[1], v[1]), qubits 0-based.]==])
      return
    end
    local x = ...
    if x == nil then
      print('help(nil): nothing to document (a misspelt name? types are not fields of qd: ' ..
            'use help("qd.State") or help(obj)); help() shows where to start')
      return
    end
    local text = lookup(x)
    if not text then
      print("no documentation for " .. tostring(x) .. "; help() shows where to start, help(qd) lists the library")
    else
      print(text)
    end
  end
  return helpfn
end

return M
