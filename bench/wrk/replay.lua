-- Sends pre-signed requests from the file named by REQUESTS, one line each, tab-separated:
-- method, path, key id, timestamp, nonce, signature, Idempotency-Key, bearer token, body ("-" when absent;
-- bench/harness.py LINE_FIELDS).
-- Thread n of THREADS sends lines n, n+THREADS, ... so no request is sent twice: POS signatures and
-- Idempotency-Keys are single-use, and a repeat would measure the replay guard instead of the work.
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

function init(args)
  lines = {}
  for line in io.lines(os.getenv("REQUESTS")) do
    table.insert(lines, line)
  end
  stride = tonumber(os.getenv("THREADS"))
  index = id - stride
end

local function split(line)
  local fields = {}
  for field in string.gmatch(line .. "\t", "([^\t]*)\t") do
    table.insert(fields, field)
  end
  return fields
end

function request()
  index = index + stride
  if index > #lines then
    index = id  -- out of fresh requests: the run was sized too small; repeats show as errors
  end
  local f = split(lines[index])
  local headers = {["Content-Type"] = "application/json"}
  if f[3] ~= "-" then
    headers["Tsunagari-Key-Id"] = f[3]
    headers["Tsunagari-Timestamp"] = f[4]
    headers["Tsunagari-Nonce"] = f[5]
    headers["Tsunagari-Signature"] = f[6]
  end
  if f[7] ~= "-" then headers["Idempotency-Key"] = f[7] end
  if f[8] ~= "-" then headers["Authorization"] = "Bearer " .. f[8] end
  local body = nil
  if f[9] ~= "-" then body = f[9] end
  return wrk.format(f[1], f[2], headers, body)
end
