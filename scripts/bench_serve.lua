-- wrk script of scripts/bench_serve.sh: every request is POST /translate with one sentence of
-- the file named by $BENCH_SENTENCES, taken in turn (each wrk thread starts at another line);
-- done() prints one summary line: requests/s, latency percentiles, errors.
local sentences = {}
local next_index = 1

local function json_string(s)
  s = s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' elseif c == '\\' then return '\\\\' end
    return string.format('\\u%04x', c:byte())
  end)
  return '"' .. s .. '"'
end

function init(args)
  local path = os.getenv("BENCH_SENTENCES")
  for line in io.lines(path) do
    sentences[#sentences + 1] = '{"text": [' .. json_string(line) .. ']}'
  end
  next_index = 1 + (id or 0) * 97 % #sentences
end

function setup(thread)
  thread:set("id", setup_count or 0)
  setup_count = (setup_count or 0) + 1
end

function request()
  local body = sentences[next_index]
  next_index = next_index % #sentences + 1
  return wrk.format("POST", "/translate", {["Content-Type"] = "application/json"}, body)
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write +
                 summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT requests %d  %.1f req/s  p50 %.1f ms  p99 %.1f ms  max %.1f ms  errors %d\n",
    summary.requests, summary.requests / seconds, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, errors))
end
