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
  "kron", "fidelity", "trace_distance", "purity", "entropy", "load_npy", "save_ensembles", "gates",
  "gate_matrix", "set_threads", "threads", "blas_info", "clock",
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

local help = require "qd.help"
qd.help = help.make(qd, core)

return qd
