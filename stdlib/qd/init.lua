-- qd — the public module. Arranges the C core ("qd.core") under the documented names
-- (design.md: qd.state(n), qd.state.from, qd.ensemble.haar, ...) and adds help().
-- Constructors that also carry sub-functions (qd.state, qd.ensemble) are callable tables
-- whose __call is a C function that drops the table argument, so errors read
-- "script.lua:3: bad argument #1 to 'state' (...)" at the caller's line.
local core = require "qd.core"

local qd = {}

qd.state = setmetatable({ from = core.state_from }, { __call = core.state_call })
qd.ensemble = setmetatable({ haar = core.ensemble_haar, from = core.ensemble_from },
                           { __call = core.ensemble_call })

for _, name in ipairs {
  "haar_state", "dm", "maximally_mixed", "vector", "matrix", "rng", "run_rng", "set_seed",
  "kron", "fidelity", "trace_distance", "purity", "entropy", "load_npy", "save_ensembles", "save_stack", "gates",
  "gate_matrix", "set_threads", "threads", "blas_info", "clock", "simd", "simd_sets", "set_simd",
  "allclose", "expect",
} do
  qd[name] = core[name]
end

qd.version = core.version
qd.max_qubits = core.max_qubits

-- type(x) for qd objects: "qd.State", "qd.Ensemble", ...; Lua's type otherwise
function qd.type(x)
  local mt = getmetatable(x)
  if type(mt) == "table" and type(mt.__name) == "string" and mt.__name:match("^qd%.") then
    return mt.__name
  end
  return type(x)
end

-- random states and unitaries, schedules, QuDDPM scrambling, data sets
qd.random = core.random
qd.random.state = core.haar_state
qd.random.ensemble = core.ensemble_haar
qd.schedule = core.schedule
qd.diffusion = require "qd.diffusion"
qd.data = require "qd.data"
qd.metrics = require "qd.metrics"   -- memorisation, convergence, latent recovery (metrics.lua)
qd.channel = core.channel   -- qd.channel.depolarizing{p=}, ... (lua_channel.c)
qd.loss = core.loss         -- losses with gradients (lua_loss.c)
qd.ot = core.ot             -- optimal transport on a cost matrix (transport.c)
qd.superfidelity = core.superfidelity
qd.optim = require "qd.optim"
qd.nn = core.nn             -- small dense networks: qd.nn.mlp, mse, columns, vstack (lua_nn.c)
qd.image = core.image       -- images as matrix columns: encode, readout, psnr, ssim (lua_image.c)
qd.tokens = require "qd.tokens"   -- genQC token tensors: encode, decode, .npy (tokens.lua, lua_synth.c)
qd.synth = require "qd.synth"     -- SRVs, unitary distances, data sets, evaluation (synth.lua)

-- circuits (lua_circuit.c), their text forms (qasm.lua) and ansatz builders
do
  local qasm = require "qd.qasm"
  qd.circuit = setmetatable({ from_qasm = function(text, opts) return qasm.from_qasm(qd, text, opts) end },
                            { __call = core.circuit_call })
  local cm = core.metatables["qd.Circuit"].methods
  cm.to_qasm = qasm.to_qasm
  cm.draw = qasm.draw
  qd.noise = require "qd.noise"
  cm.with_noise = qd.noise.apply
  cm.plot = function(c, opts) return qd.plot.circuit(c, opts) end   -- a picture (qd/plot_circuit.lua)
  qd.ansatz = require "qd.ansatz"
end

-- Hamiltonians and dynamics (lua_pauli.c, lua_dynamics.c): qd.pauli_sum{{-1, "ZZI"}, ...},
-- builders, the Lindblad integrator and SSE trajectories
qd.pauli_sum = setmetatable({ tfim = core.pauli_tfim, sigma_minus = core.pauli_sigma_minus,
                              sigma_plus = core.pauli_sigma_plus }, { __call = core.pauli_sum_call })
qd.lindblad = core.lindblad
qd.sse = core.sse

-- pictures through gnuplot (plot.lua); gnuplot is looked for at the first plot, so a machine
-- without it or a sandboxed script pays nothing
qd.plot = require "qd.plot"

-- several processes (MPI; one rank without it) and sweeps of independent runs over them
qd.mpi = require "qd.mpi"
qd.sweep = require("qd.sweep").sweep

-- readable text for any value, as the prompt prints results
qd.pretty = require "qd.pretty"

local help = require "qd.help"
qd.help = help.make(qd, core)

return qd
