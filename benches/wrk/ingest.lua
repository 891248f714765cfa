-- wrk script: posts a shared example with a fresh message id per request, so every request
-- is a new message (normalised, validated and committed), not an idempotent replay.
--   wrk -t2 -c64 -d10s -s benches/wrk/ingest.lua http://127.0.0.1:8080 -- FILE TOKEN TAG
-- FILE defaults to the ipo clue transfer example, TOKEN to its sender's demo token; TAG (default
-- the current second) keeps the ids of wrk processes running side by side apart.

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local path = args[1] or "tests/fixtures/shared/examples/ipo-clue-transfer.json"
  local token = args[2] or "demo-ip_office-330100"
  local f = assert(io.open(path, "rb"))
  template = f:read("*a")
  f:close()
  headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }
  counter = 0
  run = args[3] or tostring(os.time())
end

function request()
  counter = counter + 1
  local id = string.format('"LOAD-%s-%d-%d"', run, tid, counter)
  -- Replace the value of the first message-id field (xxid or messageId).
  local body = template:gsub('("xxid"%s*:%s*)"[^"]*"', "%1" .. id, 1)
  body = body:gsub('("messageId"%s*:%s*)"[^"]*"', "%1" .. id, 1)
  return wrk.format("POST", "/v1/messages", headers, body)
end

statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("statuses") or {}) do
      total[status] = (total[status] or 0) + n
    end
  end
  for status, n in pairs(total) do
    io.write(string.format("status %d: %d\n", status, n))
  end
  io.write(string.format("p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
