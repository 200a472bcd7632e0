-- qd.digits — the 8x8 handwritten digits (1797 images, 16 grey levels, UCI "optdigits" as
-- scikit-learn ships them: Debian's python3-sklearn installs digits.csv.gz, one image per
-- line, 64 pixels row by row then the class). Read with zlib (core.gunzip_file, through the
-- sandbox's path policy); when the file is absent, a generated stand-in of the same shape
-- (digit glyphs, randomly shifted and jittered) — the result says which (source, note).
-- qd.data.digits is load below; QDDM (arXiv 2401.07049) trains on it.
local core = require "qd.core"
local caller = require "qd.caller"

local M = {}

-- where Debian puts the file (interp/main.c lets --sandbox read this path)
M.default_path = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"

local function qtype(x)
  local mt = getmetatable(x)
  if type(mt) == "table" and type(mt.__name) == "string" then return mt.__name end
  return type(x)
end

local function argerr(msg) caller.argerror("digits", 1, msg) end

-- the file's rows as {pixels (64 numbers 0..16), class}, or nil, message
function M.read(path)
  -- a path the sandbox refuses is an unavailable file too (the note of load says so)
  local ok, text, err = pcall(core.gunzip_file, path, 1 << 24)
  if not ok then return nil, tostring(text) end
  if not text then return nil, err end
  local rows = {}
  local ln = 0
  for line in text:gmatch("[^\n]+") do
    ln = ln + 1
    local v = {}
    for f in line:gmatch("[^,]+") do
      local x = tonumber(f)
      if not x then return nil, string.format("%s: line %d: '%s' is not a number", path, ln, f) end
      v[#v + 1] = x
    end
    if #v ~= 65 then
      return nil, string.format("%s: line %d: 65 fields expected, got %d", path, ln, #v)
    end
    local cls = math.tointeger(v[65])
    if not cls or cls < 0 or cls > 9 then
      return nil, string.format("%s: line %d: class 0..9 expected", path, ln)
    end
    v[65] = nil
    rows[#rows + 1] = { v, cls }
  end
  if #rows == 0 then return nil, path .. ": no images" end
  return rows
end

-- digit glyphs for the stand-in ('#' = 16), drawn on 8x8, rows separated by '/'
local glyphs = {
  [0] = "..###.../.#...#../.#...#../.#...#../.#...#../.#...#../..###.../........",
  [1] = "...#..../..##..../...#..../...#..../...#..../...#..../..###.../........",
  [2] = "..###.../.#...#../.....#../....#.../...#..../..#...../.#####../........",
  [3] = "..###.../.#...#../.....#../...##.../.....#../.#...#../..###.../........",
  [4] = "....#.../...##.../..#.#.../.#..#.../.#####../....#.../....#.../........",
  [5] = ".#####../.#....../.####.../.....#../.....#../.#...#../..###.../........",
  [6] = "..###.../.#....../.#....../.####.../.#...#../.#...#../..###.../........",
  [7] = ".#####../.....#../....#.../...#..../...#..../...#..../...#..../........",
  [8] = "..###.../.#...#../.#...#../..###.../.#...#../.#...#../..###.../........",
  [9] = "..###.../.#...#../.#...#../..####../.....#../....#.../..##..../........",
}

-- n generated rows in the file's form: class k = (i - 1) % 10, shifted by -1..1 pixels and
-- jittered (+- 3 grey levels, thickened edges at 8), from rng
function M.generate(n, rng)
  local rows = {}
  for i = 1, n do
    local cls = (i - 1) % 10
    local g = {}
    for row in glyphs[cls]:gmatch("[^/]+") do g[#g + 1] = row end
    local dr, dc = rng:integer(-1, 1), rng:integer(0, 1)
    local v = {}
    for r = 0, 7 do
      for c = 0, 7 do
        local sr, sc = r - dr, c - dc
        local inside = sr >= 0 and sr < 8 and sc >= 0 and sc < 8
        local ch = inside and g[sr + 1]:sub(sc + 1, sc + 1) or "."
        local x = ch == "#" and 16 - rng:integer(0, 4) or rng:integer(0, 2)
        v[r * 8 + c + 1] = x
      end
    end
    rows[i] = { v, cls }
  end
  return rows
end

-- the columns of rows[idx] as a 64 x #idx Matrix (grey levels / 16), their classes and
-- labels (class / largest class, the reference's normalisation to [0, 1])
local function pack(rows, idx, maxc)
  local X = core.matrix(64, #idx)
  local cls, lab = {}, core.vector(#idx)
  for j, k in ipairs(idx) do
    local v = rows[k][1]
    for i = 1, 64 do X:set(i, j, v[i] / 16) end
    cls[j] = rows[k][2]
    lab[j] = maxc > 0 and rows[k][2] / maxc or 0.0
  end
  return X, cls, lab
end

local allowed = { n_classes = true, ds_size = true, train_fraction = true, path = true, rng = true,
                  fallback = true, generated = true }

-- load{n_classes = 10, ds_size = all, train_fraction = 0.8, path = default_path, rng = nil,
-- fallback = true, generated = false} -> {train = X (64 x N), test = X, train_classes,
-- test_classes, train_labels, test_labels (Vectors), source = "digits" | "generated",
-- path, note, width = 8, height = 8}.
-- As the reference (sklearn's load_digits(n_class)): the images of classes 0..n_classes-1
-- in file order, the first ds_size of them; then, if rng is given, shuffled by it (a seeded
-- split) — without rng the reference's order; the first floor(train_fraction * ds_size)
-- train, the rest test. generated = true uses the stand-in even when the file is there.
function M.load(o)
  if o == nil then o = {} end
  if type(o) ~= "table" then argerr("options table expected, got " .. type(o)) end
  for k in pairs(o) do
    if not allowed[k] then argerr("unknown option '" .. tostring(k) .. "'") end
  end
  local nc = o.n_classes or 10
  if math.type(nc) ~= "integer" or nc < 1 or nc > 10 then
    argerr("option 'n_classes': integer 1..10 expected, got " .. tostring(nc))
  end
  local ds = o.ds_size
  if ds ~= nil and (math.type(ds) ~= "integer" or ds < 2) then
    argerr("option 'ds_size': integer >= 2 expected, got " .. tostring(ds))
  end
  local tf = o.train_fraction or 0.8
  if type(tf) ~= "number" or not (tf > 0 and tf < 1) then
    argerr("option 'train_fraction': number in (0, 1) expected, got " .. tostring(tf))
  end
  local path = o.path or M.default_path
  if type(path) ~= "string" then argerr("option 'path': string expected, got " .. type(path)) end
  local rng = o.rng
  if rng ~= nil and qtype(rng) ~= "qd.Rng" then
    argerr("option 'rng': qd.Rng expected, got " .. qtype(rng))
  end
  for _, k in ipairs { "fallback", "generated" } do
    if o[k] ~= nil and type(o[k]) ~= "boolean" then argerr("option '" .. k .. "': boolean expected") end
  end
  local rows, err, source, note
  if not o.generated then rows, err = M.read(path) end
  if rows then
    source = "digits"
    note = string.format("%d handwritten 8x8 digits from %s", #rows, path)
  else
    if o.fallback == false then error("digits: " .. tostring(err), caller.outside()) end
    rows = M.generate(1797, core.rng(15):substream(1))
    source = "generated"
    note = (o.generated and "generated digit glyphs (asked for)" or
            ("generated digit glyphs: the real digits are unavailable (" .. tostring(err) ..
             "; Debian's python3-sklearn installs them)"))
  end
  local idx = {}
  for k, r in ipairs(rows) do if r[2] < nc then idx[#idx + 1] = k end end
  if ds and ds < #idx then for k = #idx, ds + 1, -1 do idx[k] = nil end end
  if rng then
    for i = #idx, 2, -1 do
      local j = rng:integer(1, i)
      idx[i], idx[j] = idx[j], idx[i]
    end
  end
  local ntr = math.floor(tf * #idx)
  if ntr < 1 or ntr >= #idx then
    argerr(string.format("%d images cannot be split %g / %g", #idx, tf, 1 - tf))
  end
  local tr, te = {}, {}
  for k = 1, #idx do if k <= ntr then tr[#tr + 1] = idx[k] else te[#te + 1] = idx[k] end end
  local maxc = 0
  for _, k in ipairs(idx) do if rows[k][2] > maxc then maxc = rows[k][2] end end
  local r = { source = source, path = source == "digits" and path or nil, note = note,
              width = 8, height = 8 }
  r.train, r.train_classes, r.train_labels = pack(rows, tr, maxc)
  r.test, r.test_classes, r.test_labels = pack(rows, te, maxc)
  return r
end

return M
