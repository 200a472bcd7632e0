-- same_results.lua A B KEY — the field KEY (default "results", or "metrics") of the run
-- records A/run.json and B/run.json are equal, bit for bit (JSON numbers in %.17g)
local json = require "qd.json"
local record = require "qd.record"
local a, b, key = arg[1], arg[2], arg[3] or "results"
local ra = json.decode(assert(record.read_file(a .. "/run.json")))
local rb = json.decode(assert(record.read_file(b .. "/run.json")))
local ea, eb = json.encode(ra[key]), json.encode(rb[key])
if ea == eb and ra[key] ~= nil then
  print(key .. " equal (" .. #ea .. " bytes of JSON)")
  print("1 passed, 0 failed")
else
  print(key .. " differ:\n" .. ea:sub(1, 400) .. "\n" .. eb:sub(1, 400))
  print("0 passed, 1 failed")
  os.exit(1)
end
