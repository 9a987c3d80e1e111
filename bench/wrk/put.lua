-- PUT {"value": n} to the URL given on the command line, n cycling through 1..1000 (each thread
-- starting elsewhere), so every request is a real change. No expect_version: concurrent writers
-- never conflict, every answer should be 200. Headers such as Authorization come with -H.
dofile("report.lua")

local threads = 0
local n = 0

function setup(thread)
  thread:set("offset", threads * 500)
  threads = threads + 1
end

function init(args)
  n = offset or 0
  wrk.method = "PUT"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  n = n % 1000 + 1
  return wrk.format(nil, nil, nil, '{"value": ' .. n .. '}')
end
