-- qddm_digits.lua — QDDM (arXiv 2401.07049): pixel-space diffusion of the 8x8 handwritten
-- digits with a quantum denoiser (Q-Dense), its label-directed variant, the single-sampling
-- model on states (U^t as one matrix power), or the classical dense baseline of about the
-- same parameter count.
--
--   forward   x_t = clamp((1 - w_t) x0 + w_t eps, 0, 1), eps ~ N(0.5, 0.2^2), w_t = (t/T)^3
--   denoiser  qdense: 64 pixels amplitude-encoded on 6 qubits, L strongly entangling layers
--             (angles pi tanh(w)), read-out clamp(64 p, 0, 1); "noise" goal as the reference
--   training  MSE, Adam (lr 1e-4 as the reference unless --lr), batches of 10 images x T pairs
-- Data: qd.data.digits (classes 0..n-1, the first 100 images, a seeded 80/20 split); the
-- generated stand-in when Debian's python3-sklearn is not installed (said in the output).
-- Metrics: mse, psnr, ssim (7x7 uniform-window SSIM) of denoising the test images from
-- x_T; gen_* of generated digits against their nearest training image; nparams, seconds.
--
--   qd examples/qddm_digits.lua [--model qdense|qdense_directed|qdense_reupload|single_step|dense|
--        dense_directed] [--reuploads 2]
--        [--layers 55] [--classes 2] [--epochs N] [--goal noise|data] [--lr 0.001]
--        [--seed 1] [--out DIR] [--small]
local qd = require "qd"
local qddm = require "qd.protocols.qddm"
local protocol = require "qd.protocol"

local opts = qddm.parse_cli(arg, {
  name = "qddm_digits",
  about = "QDDM: image diffusion of 8x8 digits with quantum (Q-Dense) or dense denoisers.",
  options = protocol.cli_options {
    { "model", "qdense", "qdense | qdense_directed | qdense_reupload | single_step | dense | " ..
      "dense_directed", choices = qddm.models },
    { "reuploads", 2, "label re-uploads of qdense_reupload (blocks of layers)", min = 1 },
    { "layers", 0, "strongly entangling layers (0 = the example's default: 55, --small 4)",
      min = 0, max = 1000 },
    { "hidden", 0, "dense hidden width (0 = the closest parameter count below Q-Dense's)",
      min = 0 },
    { "classes", 2, "digit classes 0 ... n-1, 1 ... 10", min = 1, max = 10 },
    { "ds_size", 100, "images used (80 % train), >= 10", min = 10 },
    { "epochs", 0, "training epochs (0 = the example's default)", min = 0 },
    { "goal", "", "noise | data (empty = noise, data for single_step)",
      choices = { "", "noise", "data" } },
    { "lr", 0.0, "Adam learning rate (0 = the example's default, 1e-3; the reference 1e-4)",
      min = 0 },
    { "T", 10, "diffusion steps", min = 1, max = 100 },
    { "generated", false, "use the generated digit glyphs even if the real digits are there" },
  },
})

local task = { layers = 55, epochs = 300, lr = 1e-3, ds_size = opts.ds_size }
if opts.small then task.layers, task.epochs, task.ds_size = 4, 2, 20 end
if opts.layers > 0 then task.layers = opts.layers end
if opts.epochs > 0 then task.epochs = opts.epochs end
if opts.lr > 0 then task.lr = opts.lr end
local goal = opts.goal ~= "" and opts.goal or (opts.model == "single_step" and "data" or "noise")

local data = qd.data.digits { n_classes = opts.classes, ds_size = task.ds_size,
                              rng = qddm.stream(opts.seed, "data"), generated = opts.generated }
print("data: " .. data.note)
local res = qddm.run(qddm.from_cli(opts, {
  name = "qddm_digits", model = opts.model, layers = task.layers, reuploads = opts.reuploads,
  hidden = opts.hidden > 0 and opts.hidden or nil, goal = goal, T = opts.T,
  epochs = task.epochs, lr = task.lr, data = data,
}))
qddm.exit_if_stopped(res, opts)
local s = res.settings
print(string.format("QDDM %s (%s goal, %d layers, %d parameters%s), %d classes, " ..
  "%d train / %d test images, T=%d, %d epochs, seed %d:",
  s.model, s.goal, s.layers, s.nparams, s.hidden and (", hidden " .. s.hidden) or "", opts.classes,
  s.data.train, s.data.test, s.T, s.epochs, opts.seed))
qddm.print_metrics(res)
if res.pictures then
  print("pictures: " .. table.concat(res.pictures, ", "))
elseif res.pictures_note then
  print("no pictures: " .. res.pictures_note)
end
