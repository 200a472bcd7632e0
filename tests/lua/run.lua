-- run.lua — runs tests/lua/test_*.lua (or the files given as arguments) with qd.
-- Usage: build/qd tests/lua/run.lua [files...]
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/?.lua;" .. package.path
require("testlib").run_files(dir, arg)
