-- (a) Poll: GET /v1/images/{id}, cycling through the seeded generations.
local common = dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "common.lua")

function request()
  return wrk.format("GET", "/v1/images/" .. common.next_id())
end

done = common.done
