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

return T
