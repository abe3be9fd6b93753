-- wrk script for scripts/bench.py: POST /users with a unique email per request, or GET one path.
--
--   wrk -t1 -c64 -d10s --timeout 30s -s scripts/bench_wrk.lua URL -- CONFIG
--
-- CONFIG is a file of key=value lines the harness writes (mode 0600, so the JWT is on no command line):
--   mode=ingest|get   token=<JWT or "unused">   tag=<unique per run>   path=/meetings/<id>/sync_status (get)
-- Emails are bench-<tag>-<thread>-<n>@example.com: unique across threads, runs and warm-ups.
-- done() prints one JSON line: requests, seconds, rps, p50_ms, p99_ms, max_ms, statuses (by code) and
-- errors (wrk's socket errors: connect, read, write, timeout).

local threads = {}

-- BENCH_WRK_PORTS=8080,8082,... (several replicas): thread n sends to the n-th port, as a load balancer
-- spreading connections would; the harness runs one thread per port.
function setup(thread)
  local ports = os.getenv("BENCH_WRK_PORTS")
  if ports then
    local list = {}
    for port in ports:gmatch("%d+") do
      table.insert(list, port)
    end
    thread.addr = wrk.lookup("127.0.0.1", list[(#threads % #list) + 1])[1]
  end
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

local config = {}
local counter = 0
local prefix = ""
local fixed = nil
statuses = {}

local function read_config(path)
  local values = {}
  for line in io.lines(path) do
    local key, value = line:match("^([%w_]+)=(.*)$")
    if key then
      values[key] = value
    end
  end
  return values
end

function init(args)
  config = read_config(args[1])
  prefix = config.tag .. "-" .. tostring(thread_id)
  -- Added to wrk's own table, which already holds the Host header.
  wrk.headers["Authorization"] = "Bearer " .. config.token
  wrk.headers["Content-Type"] = "application/json"
  if config.mode == "get" then
    fixed = wrk.format("GET", config.path)
  end
end

function request()
  if fixed then
    return fixed
  end
  counter = counter + 1
  local body = string.format(
    '{"name": "Bench User %d", "email": "bench-%s-%d@example.com", "phone": "+1 555 %07d"}',
    counter, prefix, counter, counter % 10000000
  )
  return wrk.format("POST", "/users", nil, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses")) do
      counts[code] = (counts[code] or 0) + n
    end
  end
  local parts = {}
  for code, n in pairs(counts) do
    table.insert(parts, string.format('"%d": %d', code, n))
  end
  local errors = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "rps": %.1f, "p50_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, '
      .. '"statuses": {%s}, "errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}}\n',
    summary.requests, seconds, summary.requests / seconds, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, table.concat(parts, ", "),
    errors.connect, errors.read, errors.write, errors.timeout
  ))
end
