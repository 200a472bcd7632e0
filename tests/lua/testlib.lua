-- testlib.lua — minimal assertions for qd's Lua tests. Counts checks (not test functions):
-- every eq/near/ok/raises is one check. The runner prints "N passed, N failed".
local T = { passed = 0, failed = 0, current = "?" }

local function report(ok, msg, level)
  if ok then
    T.passed = T.passed + 1
  else
    T.failed = T.failed + 1
    local info = debug.getinfo(level or 3, "Sl")
    io.stderr:write(string.format("FAIL %s (%s:%d): %s\n", T.current, info.short_src,
                                  info.currentline, tostring(msg)))
  end
  return ok
end

function T.ok(cond, msg) return report(cond and true or false, msg or "expected true") end

function T.eq(a, b, msg)
  return report(a == b, string.format("%s: expected %s, got %s", msg or "eq", tostring(b), tostring(a)))
end

function T.near(a, b, tol, msg)
  local ok = type(a) == "number" and type(b) == "number" and math.abs(a - b) <= (tol or 1e-12)
  return report(ok, string.format("%s: expected %.17g, got %s (tol %g)", msg or "near", b, tostring(a), tol or 1e-12))
end

-- T.raises(fn, pattern): fn must raise an error whose message contains pattern (plain text)
function T.raises(fn, pattern, msg)
  local ok, err = pcall(fn)
  if ok then
    return report(false, (msg or "raises") .. ": expected an error containing '" .. pattern .. "', got none")
  end
  err = tostring(err)
  return report(err:find(pattern, 1, true) ~= nil,
                string.format("%s: expected error containing '%s', got '%s'", msg or "raises", pattern, err))
end

-- the same bits in two ensembles (member count, size and every amplitude)
function T.same_ensemble(X, Y)
  if #X ~= #Y or X.n ~= Y.n then return false end
  for k = 1, #X do
    for i = 1, 1 << X.n do
      local ar, ai = X[k]:amp(i)
      local br, bi = Y[k]:amp(i)
      if ar ~= br or ai ~= bi then return false end
    end
  end
  return true
end

function T.test(name, fn)
  T.current = name
  local ok, err = xpcall(fn, debug.traceback)
  if not ok then
    report(false, "test raised: " .. tostring(err), 2)
  end
end

-- T.tmpdir() -> a new empty directory (remove it with T.rmdir(dir) at the end)
function T.tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(require("qd.core").sys.mkdir_p(dir))
  return dir
end

function T.rmdir(dir) os.execute("rm -rf '" .. dir .. "'") end

-- T.slurp(path) -> the file's bytes, or nil if it cannot be read
function T.slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- T.run_files(dir, argv [, o]): runs the test files given in argv (else dir/test_*.lua), each
-- in turn, printing "file N passed, N failed" per file and "N passed, N failed" at the end,
-- then exits (status 1 if any check failed). o.reduce(p, f) -> p, f turns a rank's counts
-- into the totals printed (tests/mpi/run.lua adds them over the ranks); o.tag is added to a
-- FAIL line of a file that raised, o.suffix to the final line.
function T.run_files(dir, argv, o)
  o = o or {}
  local reduce = o.reduce or function(p, f) return p, f end
  local files = {}
  for i = 1, #argv do files[#files + 1] = argv[i] end
  if #files == 0 then
    local p = io.popen('ls "' .. dir .. '"/test_*.lua 2>/dev/null')
    for f in p:lines() do files[#files + 1] = f end
    p:close()
  end
  table.sort(files)
  for _, f in ipairs(files) do
    local before_p, before_f = T.passed, T.failed
    local chunk, err = loadfile(f)
    if not chunk then
      T.failed = T.failed + 1
      io.stderr:write("FAIL loading " .. f .. ": " .. err .. "\n")
    else
      T.current = f
      local ok, e = xpcall(chunk, debug.traceback)
      if not ok then
        T.failed = T.failed + 1
        io.stderr:write("FAIL " .. f .. (o.tag or "") .. ": " .. tostring(e) .. "\n")
      end
    end
    local p, fl = reduce(T.passed - before_p, T.failed - before_f)
    print(string.format("%-40s %d passed, %d failed", f:match("[^/]*$"), p, fl))
  end
  local p, fl = reduce(T.passed, T.failed)
  print(string.format("%d passed, %d failed%s", p, fl, o.suffix or ""))
  os.exit(fl == 0 and 0 or 1)
end

return T
