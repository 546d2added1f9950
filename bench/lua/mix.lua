-- (b) Create + poll: one POST /v1/images for every ten polls of the seeded generations.
local common = dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "common.lua")

local body = '{"prompt": "a lighthouse at dusk, volumetric fog", "size": "square"}'
-- wrk.format replaces wrk.headers when given a table, so the key goes in again.
local headers = {["Content-Type"] = "application/json", ["X-Api-Key"] = common.key}
local n = 0

function request()
  n = n + 1
  if n % 11 == 0 then
    return wrk.format("POST", "/v1/images", headers, body)
  end
  return wrk.format("GET", "/v1/images/" .. common.next_id())
end

done = common.done
