-- (c) and (d): GET one fixed path (BENCH_PATH): /v1/balance, or an output URL with its ?token=.
local common = dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "common.lua")

-- No request(): wrk builds this one request once, after it knows the host, and sends it as is.
wrk.path = common.path

done = common.done
