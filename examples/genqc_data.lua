-- genqc_data.lua — a genQC-style circuit data set (arXiv 2311.02041): random circuits over a
-- vocabulary on n qubits (gate count uniform in min_gates ... gates, gates and qubits uniform),
-- labelled by their Schmidt-rank vector (SRV) from |0...0> or by their unitary, de-duplicated
-- (canonical tokens, or unitary up to a global phase), balanced per SRV class, shuffled — all
-- from --seed. Writes tokens.npy (B, n, G) in genQC's token encoding (padding V + 1 after the
-- end), srv.npy (B, n), params.npy (B, P, G) for parametrised vocabularies, unitaries.npy
-- (B, d*d, 1; column-major U per circuit, qd's qubit order) with --label unitary.
--
--   qd examples/genqc_data.lua [--qubits 3] [--gates 8] [--min-gates 1] [--samples 30000]
--        [--vocab srv|compile|multimodal] [--label srv|unitary] [--dedup tokens|unitary|none]
--        [--per-class 0] [--seed 1] [--out DIR] [--small]
local genqc = require "qd.protocols.genqc"
local protocol = require "qd.protocol"

local opts = protocol.parse_cli(arg, {
  name = "genqc_data",
  about = "genQC data set: random circuits labelled by SRV or unitary, de-duplicated and balanced.",
  options = protocol.cli_options {
    { "qubits", 3, "qubits, 2 ... 10", min = 2, max = 10 },
    { "gates", 8, "time steps (max gates) per circuit, 1 ... 256", min = 1, max = 256 },
    { "min_gates", 1, "fewest gates, 0 ... gates", min = 0 },
    { "samples", 30000, "random circuits drawn before de-duplication and balancing", min = 1 },
    { "vocab", "srv", "srv {h, cx} | compile {h, cx, z, x, ccx, swap} | multimodal", choices = { "srv", "compile", "multimodal" } },
    { "label", "srv", "srv | unitary", choices = { "srv", "unitary" } },
    { "dedup", "tokens", "tokens | unitary (up to a global phase) | none", choices = { "tokens", "unitary", "none" } },
    { "per_class", 0, "at most this many circuits per SRV class (0 = the smallest class's size)", min = 0 },
  },
}, genqc.format)
if opts.min_gates > opts.gates then require("qd.cli").fail(opts, "--min-gates exceeds --gates") end
local cfg = protocol.from_cli(opts, {
  name = "genqc_data", qubits = opts.qubits, max_gates = opts.gates, min_gates = opts.min_gates,
  samples = opts.small and 2000 or opts.samples, vocab = opts.vocab, label = opts.label,
  dedup = opts.dedup, per_class = opts.per_class,
})
cfg.resume, cfg.ckpt_every, cfg.stop_after, cfg.progress = nil, nil, nil, nil
local res = genqc.data(cfg)
print(string.format("genQC data set: %d qubits, vocabulary %s, up to %d gates, seed %d:", opts.qubits,
  opts.vocab, opts.gates, opts.seed))
local names = {}
for l in pairs(res.dataset.classes) do names[#names + 1] = l end
table.sort(names)
for _, l in ipairs(names) do print(string.format("  class %-14s %d", l, res.dataset.classes[l])) end
genqc.print_metrics(res)
