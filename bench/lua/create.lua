-- (e) Create: POST /v1/images only, each request with the next of the seeded keys (a team each), as a CI
-- fleet's tests would: a team's pending generations stay as few as one test makes. BENCH_KEYS: comma-separated.
local common = dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "common.lua")

local body = '{"prompt": "a lighthouse at dusk, volumetric fog", "size": "square"}'
local keys = {}
for key in string.gmatch(os.getenv("BENCH_KEYS") or common.key, "[^,]+") do
  keys[#keys + 1] = key
end
local n = 0

function request()
  n = n % #keys + 1
  -- wrk.format replaces wrk.headers when given a table, so the content type goes in again.
  local headers = {["Content-Type"] = "application/json", ["X-Api-Key"] = keys[n]}
  return wrk.format("POST", "/v1/images", headers, body)
end

done = common.done
