-- wrk script for bench/remote_write.py: each wrk thread POSTs its own pre-built bodies in order
-- (its own series, so no two requests race on one series), once each, then stops.
--   BODIES=dir KIND=bin|json wrk -t N -c N -s bench/remote_write.lua URL
local dir, kind = os.getenv("BODIES"), os.getenv("KIND")
local threads, next_id = {}, 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  bodies, answered, failed = {}, 0, 0
  local j = 0
  while true do
    local f = io.open(string.format("%s/t%d/%d.%s", dir, id, j, kind), "rb")
    if not f then break end
    bodies[#bodies + 1] = f:read("*a")
    f:close()
    j = j + 1
  end
  if kind == "bin" then
    headers = {
      ["Content-Encoding"] = "snappy",
      ["Content-Type"] = "application/x-protobuf",
      ["X-Prometheus-Remote-Write-Version"] = "0.1.0",
    }
  else
    headers = { ["Content-Type"] = "application/json" }
  end
end

-- The next body is the one after the last answered (one connection per thread: in order), so a
-- call of request() that wrk makes before sending anything does not skip a body.
function request()
  return wrk.format("POST", nil, headers, bodies[math.min(answered + 1, #bodies)])
end

function response(status, headers, body)
  answered = answered + 1
  if answered >= #bodies then wrk.thread:stop() end
  if status ~= 200 and status ~= 204 then
    failed = failed + 1
    if failed <= 3 then io.stderr:write("status " .. status .. ": " .. body:sub(1, 200) .. "\n") end
  end
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    local answered, failed = thread:get("answered"), thread:get("failed")
    io.write(string.format("thread %d: %d answered, %d failed\n", thread:get("id"), answered, failed))
  end
end
