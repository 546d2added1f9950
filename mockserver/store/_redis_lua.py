"""The server-side scripts of :class:`~mockserver.store.redis.RedisStore` (Lua, run with ``EVALSHA``).

Each script runs atomically in Redis, so a transaction's commit, however many records it writes, is one round trip
that no other command interleaves with. ``ARGV[1]`` is always the key prefix; the layout they maintain is described
in the ``redis`` module's docstring and in docs/redis-store.md.
"""

from __future__ import annotations

LOG_MAX = 512  # commits remembered for the processes that re-take the lease (older: they drop their whole cache)
LOG_KEYS_MAX = 256  # a commit writing more keys than this is logged as "drop everything" ('*')

# ACQUIRE(prefix, token, lease_ms, known_version, holder) → {1, version, changes} | {0}
# Takes the lease if it is free or was granted to this holder (``holder:granted``), and says what other processes
# changed since ``known_version``: the keys of every commit since (a list of entries, each ``kind US key RS kind US
# key …``), or '*' when the log no longer reaches back that far. When another process holds the lease, queues this
# holder in that one's ``want`` list (once: it keeps its place) and answers {0}; the holder grants the lease to the
# first in its queue when it lets go (``HAND_OVER``), and this holder waits on its ``grant`` list for that. A lease
# this process still holds (its local deadline passed first) is simply taken again.
ACQUIRE = """
local p = ARGV[1]
local lock = p .. ':lock'
local current = redis.call('GET', lock)
if current then
  local holder = string.match(current, '^([^:]+):')
  if holder ~= ARGV[5] then
    if holder then
      local want = p .. ':want:' .. holder
      local queued = redis.pcall('LPOS', want, ARGV[5])
      if type(queued) == 'table' and queued.err then  -- a server before 6.0.6: no LPOS
        redis.call('LREM', want, 0, ARGV[5])
        queued = false
      end
      if not queued then
        redis.call('RPUSH', want, ARGV[5])
      end
      redis.call('PEXPIRE', want, ARGV[3])
    end
    return {0}
  end
end
redis.call('SET', lock, ARGV[2], 'PX', ARGV[3])
local version = tonumber(redis.call('GET', p .. ':ver') or '0')
local known = tonumber(ARGV[4])
local behind = version - known
if behind == 0 then
  return {1, version, {}}
end
local length = redis.call('LLEN', p .. ':log')
if known < 0 or behind < 0 or behind > length then
  return {1, version, {'*'}}
end
return {1, version, redis.call('LRANGE', p .. ':log', -behind, -1)}
"""

# HAND_OVER(p, holder, first, grant_ms): the holder lets the lease go. To ``first`` if named, else to the first
# process in its ``want`` queue (never to itself): the lock becomes ``asker:granted`` for ``grant_ms`` (only that
# asker's ACQUIRE takes it), the rest of the queue moves to the asker's own queue (so it hands over in turn), and
# the asker's ``grant`` list wakes it. Nobody waiting: the lock is simply deleted. A Lua function pasted into the
# two scripts that let go (COMMIT and RELEASE).
HAND_OVER = """
local function hand_over(p, holder, first, grant_ms)
  local want = p .. ':want:' .. holder
  local asker = first
  if (not asker) or asker == '' or asker == holder then
    asker = redis.call('LPOP', want)
    while asker == holder do
      asker = redis.call('LPOP', want)
    end
  end
  local lock = p .. ':lock'
  if not asker then
    redis.call('DEL', lock, want)
    return
  end
  redis.call('SET', lock, asker .. ':granted', 'PX', grant_ms)
  local rest = redis.call('LRANGE', want, 0, -1)
  redis.call('DEL', want)
  local queue = p .. ':want:' .. asker
  local moved = 0
  for _, other in ipairs(rest) do
    if other ~= asker and other ~= holder then
      redis.call('RPUSH', queue, other)
      moved = moved + 1
    end
  end
  if moved > 0 then
    redis.call('PEXPIRE', queue, grant_ms * 10)
  end
  local grant = p .. ':grant:' .. asker
  redis.call('RPUSH', grant, '1')
  redis.call('PEXPIRE', grant, grant_ms)
end
"""

# COMMIT(prefix, token, version, lease_ms, holder, count, may_yield, grant_ms,
#        [kind, key, owner ('' deletes), blob, fresh] × count)
# → {new version, released} | {-1} (the lease is not ours any more) | {-2} (someone else wrote meanwhile).
# ``fresh`` is '1' (put again after a delete), '0', or 'u': the holder knows the record is stored with this owner,
# so only its value changes (one HSET; most writes are such updates: the team, its due heap, a bucket).
# Applies a transaction's buffered writes with the insertion order ``values`` promises: a new record (or one
# deleted and put again in the same transaction, ``fresh``) goes last; an update keeps its place. Then bumps the
# version, logs the keys, and renews the lease, or hands it over (``HAND_OVER``) when another process waits for it
# and ``may_yield`` is '1' (the holder has had it for its minimum turn).
COMMIT = (
    HAND_OVER
    + f"""
local p = ARGV[1]
local lock = p .. ':lock'
if redis.call('GET', lock) ~= ARGV[2] then
  return {{-1}}
end
local version = tonumber(redis.call('GET', p .. ':ver') or '0')
if version ~= tonumber(ARGV[3]) then
  return {{-2}}
end
local count = tonumber(ARGV[6])
local changed = {{}}
local everything = count > {LOG_KEYS_MAX}
for i = 0, count - 1 do
  local at = 9 + i * 5
  local kind, key, owner, blob, how = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4]
  local fresh = how == '1'
  local values, owners, order = p .. ':v:' .. kind, p .. ':w:' .. kind, p .. ':o:' .. kind
  local old = owner
  if how ~= 'u' then
    old = redis.call('HGET', owners, key)
  end
  if owner == '' then
    if old then
      redis.call('HDEL', values, key)
      redis.call('HDEL', owners, key)
      redis.call('ZREM', order, key)
      redis.call('ZREM', order .. ':' .. old, key)
    end
  else
    redis.call('HSET', values, key, blob)
    if old ~= owner or fresh then
      if old and old ~= owner then
        redis.call('ZREM', order .. ':' .. old, key)
      end
      local score
      if (not old) or fresh then
        score = redis.call('INCR', p .. ':seq')
      else
        score = redis.call('ZSCORE', order, key)
      end
      redis.call('HSET', owners, key, owner)
      redis.call('ZADD', order, score, key)
      redis.call('ZADD', order .. ':' .. owner, score, key)
      redis.call('SADD', p .. ':kinds:' .. owner, kind)
      redis.call('SADD', p .. ':owners', owner)
    end
  end
  if string.find(kind .. key, '[\\30\\31]') then
    everything = true
  elseif not everything then
    changed[#changed + 1] = kind .. '\\31' .. key
  end
end
version = version + 1
redis.call('SET', p .. ':ver', version)
if everything then
  redis.call('RPUSH', p .. ':log', '*')
else
  redis.call('RPUSH', p .. ':log', table.concat(changed, '\\30'))
end
redis.call('LTRIM', p .. ':log', -{LOG_MAX}, -1)
if ARGV[7] == '1' and redis.call('LLEN', p .. ':want:' .. ARGV[5]) > 0 then
  hand_over(p, ARGV[5], false, ARGV[8])
  return {{version, 1}}
end
redis.call('PEXPIRE', lock, ARGV[4])
return {{version, 0}}
"""
)

# RELEASE(prefix, token, holder, grantee, grant_ms) → 1 if the lease was ours and is now handed over (to
# ``grantee`` if not '', else to the first in the holder's queue) or free
RELEASE = (
    HAND_OVER
    + """
local p = ARGV[1]
if redis.call('GET', p .. ':lock') == ARGV[2] then
  hand_over(p, ARGV[3], ARGV[4], ARGV[5])
  return 1
end
return 0
"""
)

# RENEW(prefix, token, lease_ms) → 1 if the lease is still ours (and now runs for lease_ms more)
RENEW = """
if redis.call('GET', ARGV[1] .. ':lock') == ARGV[2] then
  return redis.call('PEXPIRE', ARGV[1] .. ':lock', ARGV[3])
end
return 0
"""

SCRIPTS = {"ACQUIRE": ACQUIRE, "COMMIT": COMMIT, "RELEASE": RELEASE, "RENEW": RENEW}
