-- Shared by every bench script: the API key header, the id list, and a JSON summary for run.py.
-- Inputs come from the environment (run.py sets them): BENCH_KEY, BENCH_IDS (comma-separated), BENCH_PATH.
local M = {}

M.key = os.getenv("BENCH_KEY") or ""
M.path = os.getenv("BENCH_PATH") or "/"
M.ids = {}
for id in string.gmatch(os.getenv("BENCH_IDS") or "", "[^,]+") do
  M.ids[#M.ids + 1] = id
end

wrk.headers["X-Api-Key"] = M.key

-- A per-thread cursor over the ids, so consecutive polls spread over every seeded generation.
local cursor = 0
function M.next_id()
  cursor = cursor % #M.ids + 1
  return M.ids[cursor]
end

-- Printed once at the end, on a line of its own: run.py reads this instead of wrk's human-readable units.
function M.done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p99_us": %d, '
      .. '"mean_us": %.1f, "max_us": %d, "non2xx": %d, "connect_errors": %d, "read_errors": %d, '
      .. '"write_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99),
    latency.mean, latency.max, e.status, e.connect, e.read, e.write, e.timeout))
end

return M
