-- genqc_eval.lua — one-call evaluation of generated circuits (genQC, arXiv 2311.02041): token
-- tensors from a .npy of shape (B, n, G) in genQC's encoding (e.g. written by genQC itself
-- or by genqc_train.lua), decoded and simulated in C: valid fraction, accuracy (the
-- requested SRV, or compiling the target unitary to infidelity < --tol), per-class accuracy,
-- gate counts, unique and novel fractions (against --train tokens). Without FILE: a baseline,
-- uniformly random circuits of the vocabulary evaluated against a random SRV request, with a
-- genQC data set as the training set (--small: fewer circuits).
--
--   qd examples/genqc_eval.lua [FILE.npy] [--target srv|unitary] [--srv 2,1,2 | --srv-file S.npy]
--        [--unitary U.npy] [--qubit-order qd|qiskit] [--train T.npy] [--vocab srv] [--tol 1e-3]
--        [--seed 1] [--out DIR] [--small]
local qd = require "qd"
local genqc = require "qd.protocols.genqc"
local protocol = require "qd.protocol"

local file = nil
if arg[1] and not arg[1]:match("^%-%-") then file = table.remove(arg, 1) end
local opts = protocol.parse_cli(arg, {
  name = "genqc_eval",
  about = "Evaluate generated circuit tokens (.npy, genQC's encoding): validity, accuracy, uniqueness, novelty.",
  options = protocol.cli_options {
    { "file", "", "tokens .npy (B, n, G) (or the first argument)" },
    { "target", "srv", "srv | unitary", choices = { "srv", "unitary" } },
    { "srv", "", "requested SRV for every circuit, e.g. 2,1,2" },
    { "srv_file", "", "requested SRV per circuit, .npy (B, n)" },
    { "unitary", "", "target unitary .npy (d, d)" },
    { "qubit_order", "qd", "qubit order of the unitary file: qd (qubit 0 most significant) | qiskit", choices = { "qd", "qiskit" } },
    { "train", "", "training-set tokens .npy for novelty" },
    { "vocab", "srv", "srv | compile | multimodal", choices = { "srv", "compile", "multimodal" } },
    { "tol", 1e-3, "infidelity below which a circuit compiles", min = 0 },
    { "qubits", 3, "baseline only: qubits", min = 2, max = 10 },
    { "gates", 8, "baseline only: time steps", min = 1, max = 256 },
    { "count", 100000, "baseline only: random circuits", min = 1 },
  },
}, genqc.format)
file = file or (opts.file ~= "" and opts.file or nil)
local cfg = protocol.from_cli(opts, { name = "genqc_eval", vocab = opts.vocab, target = opts.target, tol = opts.tol,
                                      qubit_order = opts.qubit_order })
cfg.resume, cfg.ckpt_every, cfg.stop_after, cfg.progress = nil, nil, nil, nil
if not file then
  -- the baseline: random circuits (stream "sample") and a data set (stream "data") in a scratch
  -- directory under the run directory
  local dir = cfg.out or require("qd.record").default_dir("genqc_eval")
  require("qd.record").mkdir(dir)
  local n, G = opts.qubits, opts.gates
  local count = opts.small and 2000 or opts.count
  local vocab = qd.tokens.vocabularies[opts.vocab]
  local B = qd.tokens.random(n, G, vocab, count, genqc.stream(opts.seed, "sample"))
  file = dir .. "/random_tokens.npy"
  qd.tokens.save(file, B, n)
  local ds = qd.synth.dataset { qubits = n, max_gates = G, vocab = vocab, samples = opts.small and 2000 or 30000,
                                rng = genqc.stream(opts.seed, "data") }
  qd.tokens.save(dir .. "/train_tokens.npy", ds.tokens, n)
  cfg.train = dir .. "/train_tokens.npy"
  cfg.out = dir
  cfg.input_name = "baseline: random_tokens.npy, train_tokens.npy"
  if opts.target == "srv" and opts.srv == "" and opts.srv_file == "" then
    local req = {}
    for q = 1, n do req[q] = q <= 2 and 2 or 1 end
    cfg.srv = req
  end
end
cfg.file = file
if opts.srv ~= "" then
  local req = {}
  for d in opts.srv:gmatch("%d+") do req[#req + 1] = tonumber(d) end
  cfg.srv = req
end
if opts.srv_file ~= "" then cfg.srv = opts.srv_file end
if opts.unitary ~= "" then cfg.unitary = opts.unitary end
if opts.train ~= "" then cfg.train = opts.train end
local res = genqc.eval_file(cfg)
print(string.format("genQC evaluation of %s (%d circuits, target %s):", file, res.result.count, opts.target))
local names = {}
for l in pairs(res.result.per_class) do names[#names + 1] = l end
table.sort(names)
for _, l in ipairs(names) do
  local pc = res.result.per_class[l]
  print(string.format("  class %-14s %6d requested, accuracy %.4f", l, pc.n, pc.accuracy))
end
genqc.print_metrics(res)
