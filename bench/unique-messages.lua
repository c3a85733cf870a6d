-- wrk script: POST /v1/messages with a ~1 KB payload per message.
--
-- By default every payload is unique: a per-thread sequence number, the thread's number and a
-- random run id, then text taken from a random offset of a word list, padded so the payload
-- (the JSON object under "payload") is exactly PAYLOAD_BYTES (1024) long, as
-- hookrelay-bench's payloads are. SAME_PAYLOAD=1 posts one identical body every time instead.
-- Environment: API_KEY (required), SAME_PAYLOAD, PAYLOAD_BYTES, PROCESSOR_ID.
--
-- done() prints machine-readable lines starting with "WRK " for bench/wrk-e2e.sh.

local api_key = os.getenv("API_KEY") or error("API_KEY is not set")
local same = os.getenv("SAME_PAYLOAD") == "1"
local payload_bytes = tonumber(os.getenv("PAYLOAD_BYTES") or "1024")
local processor = os.getenv("PROCESSOR_ID") or "proc_bench"

local words = { "invoice", "total", "customer", "shipped", "pending", "amount", "currency",
  "order", "line", "item", "refund", "paid", "due", "address", "street", "city", "note",
  "extracted", "field", "value", "confidence", "page", "table", "row", "date", "vendor", "tax",
  "discount" }

-- A long text to take each payload's filler from, built once per thread.
local filler
local function build_filler()
  local parts, len = {}, 0
  while len < payload_bytes * 8 do
    local w = words[math.random(#words)]
    parts[#parts + 1] = w
    len = len + #w + 1
  end
  filler = table.concat(parts, " ")
end

-- The body of message `seq` of thread `tid`; the payload is exactly payload_bytes long.
local function body(tid, seq)
  local head
  if same then
    head = '{"seq":0,"thread":0,"run_id":"0000000000000000","note":"'
  else
    head = string.format('{"seq":%d,"thread":%d,"run_id":"%08x%08x","note":"', seq, tid,
      math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
  end
  local text_len = math.max(payload_bytes - #head - 2, 0)
  local offset = same and 1 or math.random(1, #filler - text_len)
  local payload = head .. filler:sub(offset, offset + text_len - 1) .. '"}'
  return '{"processor_id":"' .. processor .. '","payload":' .. payload .. '}'
end

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  threads[#threads + 1] = thread
end

function init(args)
  math.randomseed(os.time() * 1000 + (tid or 0))
  build_filler()
  wrk.method = "POST"
  wrk.headers["Api-Key"] = api_key
  wrk.headers["Content-Type"] = "application/json"
  if same then
    wrk.body = body(0, 0)
  end
end

local seq = 0

if not same then
  function request()
    seq = seq + 1
    return wrk.format(nil, nil, nil, body(tid, seq))
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK requests %d\n", summary.requests))
  io.write(string.format("WRK duration_us %d\n", summary.duration))
  io.write(string.format("WRK errors connect=%d read=%d write=%d status=%d timeout=%d\n",
    e.connect, e.read, e.write, e.status, e.timeout))
  for _, p in ipairs({ 50, 90, 99, 99.9 }) do
    io.write(string.format("WRK latency_p%s_ms %.2f\n", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("WRK latency_max_ms %.2f\n", latency.max / 1000))
end
