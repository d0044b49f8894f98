"""The Lua scripts behind `RedisStore`: each mutation is one script, atomic on the server.

Every script touches only the keys it is given, all sharing one hash tag (``{...}``), so it runs
on Redis Cluster too. Time is the server's (``TIME``), never a client's. Seconds go back to
Python as whole microseconds (Redis turns Lua numbers into integers), -1 meaning "none" or
"never". A key that must expire gets its TTL once, when the script creates it: a write never
pushes it forward, so a window always ends.
"""

from __future__ import annotations

__all__ = ["BREAKER", "BUDGET", "LIMIT_ACQUIRE", "LIMIT_SETTLE"]

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function us(x) return math.floor(x * 1000000 + 0.5) end
"""

BUDGET = (
    _NOW
    + """
-- KEYS[1]: the budget's hash (spent, reserved: whole nano-dollars; max)
-- KEYS[2]: its leases, a sorted set: one member '<nano-dollars>:<id>' per reservation in flight,
--   scored by when the lease ends on this server's clock
-- ARGV: op ('reserve' | 'settle' | 'books' | 'reset'), then
--   reserve: max, amount, lease seconds, lease id;  settle: lease ('' for none), cost
-- Amounts stay strings from end to end (HINCRBY takes them as given): Lua's numbers would turn
-- large ones into '1e+15', which HINCRBY refuses.
local books, leases = KEYS[1], KEYS[2]
local op = ARGV[1]
if op == 'reset' then
  redis.call('DEL', books, leases)
  return {1, 0, 0, ''}
end
local function give_back(lease)
  local amount = string.match(lease, '^(%d+):')
  if amount and amount ~= '0' then
    -- ('-' .. amount, not 0 - amount: a Lua -0 or float would reach Redis malformed.)
    if redis.call('HINCRBY', books, 'reserved', '-' .. amount) < 0 then
      redis.call('HSET', books, 'reserved', 0)
    end
  end
end
-- Leases that ended unsettled belong to processes that died mid-call: their money comes back
-- before anything else is decided.
local ended = redis.call('ZRANGEBYSCORE', leases, '-inf', now)
if #ended > 0 then
  for _, lease in ipairs(ended) do give_back(lease) end
  redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
end
local spent = tonumber(redis.call('HGET', books, 'spent') or '0')
local reserved = tonumber(redis.call('HGET', books, 'reserved') or '0')
if op == 'reserve' then
  local max, amount = tonumber(ARGV[2]), tonumber(ARGV[3])
  if spent + reserved + amount > max then
    return {0, spent, reserved, ''}
  end
  redis.call('HSET', books, 'max', ARGV[2])
  if amount <= 0 then
    return {1, spent, reserved, ''}
  end
  local lease = ARGV[3] .. ':' .. ARGV[5]
  -- No TTL on either key: the books outlive every lease, and the sorted set empties itself.
  redis.call('ZADD', leases, now + tonumber(ARGV[4]), lease)
  reserved = redis.call('HINCRBY', books, 'reserved', ARGV[3])
  return {1, spent, reserved, lease}
elseif op == 'settle' then
  local lease = ARGV[2]
  -- Only a live lease gives its money back: one that ended already did, above or earlier.
  if lease ~= '' and redis.call('ZREM', leases, lease) == 1 then
    give_back(lease)
  end
  spent = redis.call('HINCRBY', books, 'spent', ARGV[3])
  reserved = tonumber(redis.call('HGET', books, 'reserved') or '0')
  return {1, spent, reserved, ''}
end
return {1, spent, reserved, ''}
"""
)

BREAKER = (
    _NOW
    + """
-- KEYS[1]: the breaker's hash. The state machine is CircuitBreaker's (resilience/_breaker.py),
-- step for step, so a shared breaker opens, probes and closes exactly like a local one.
-- ARGV: op, outcome, retry_after (-1: none), probe (0/1), jitter, ignore_cooldown (0/1),
--       window, min_calls, failure_rate, consecutive_failures, open_base, open_cap,
--       probe_failures, probe_timeout, misconfigured_open, rate_limit_cooldown
local key = KEYS[1]
local op, outcome = ARGV[1], ARGV[2]
local retry_after, probe, jitter = tonumber(ARGV[3]), ARGV[4] == '1', tonumber(ARGV[5])
local ignore_cooldown = ARGV[6] == '1'
local window, min_calls, failure_rate = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local consecutive_max, open_base, open_cap = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local probe_failures, probe_timeout = tonumber(ARGV[13]), tonumber(ARGV[14])
local misconfigured_open, rl_cooldown = tonumber(ARGV[15]), tonumber(ARGV[16])

local h = redis.call('HGETALL', key)
local s = {st = 'closed', ro = 0, cd = 0, to = 0, h = 0, po = 0, ps = 0, fp = 0, fo = 0, cf = 0, f = 0, w = ''}
for i = 1, #h, 2 do
  local v = h[i + 1]
  if h[i] == 'st' or h[i] == 'w' then s[h[i]] = v else s[h[i]] = tonumber(v) end
end
local dirty = false

local function probe_in_flight()
  return s.po == 1 and now - s.ps < probe_timeout
end
local function state_now()
  if (s.st == 'open' or s.st == 'misconfigured') and now >= s.ro then return 'half_open' end
  return s.st
end
local function open(seconds, st)
  s.st = st
  s.ro = math.max(s.ro, now + seconds)
  s.w, s.f, s.cf, s.fp, s.fo, s.h = '', 0, 0, 0, 0, 0
  dirty = true
end
local function open_seconds()
  return math.min(open_base * s.to, open_cap) * jitter
end
local function close()
  s.st = 'closed'
  s.w, s.f, s.cf, s.fp, s.fo = '', 0, 0, 0, 0
  dirty = true
end

local admission = ''
if op == 'admit' then
  if s.cd > now and not ignore_cooldown then
    admission = ''
  elseif s.st == 'closed' then
    admission = 'call'
  elseif s.st ~= 'half_open' and now < s.ro then
    admission = ''
  else
    s.st = 'half_open'
    dirty = true
    if not probe_in_flight() then
      s.po, s.ps = 1, now
      admission = 'probe'
    end
  end
elseif op == 'force' then
  if s.st == 'misconfigured' or probe_in_flight() then
    admission = ''
  else
    s.ro = math.min(s.ro, now)
    s.cd = math.min(s.cd, now)
    if s.st ~= 'closed' then s.fo = 1 else s.fo = 0 end
    dirty = true
    admission = 'forced'
  end
elseif op == 'record' then
  repeat
    if outcome == 'cooldown' then
      local hint = rl_cooldown
      if retry_after > 0 then hint = retry_after end
      s.cd = math.max(s.cd, now + hint)
      dirty = true
    end
    if probe then
      s.po = 0
      dirty = true
    elseif s.st ~= 'closed' and outcome ~= 'misconfigured' then
      break
    end
    if outcome == 'ignored' or outcome == 'cooldown' then break end
    if outcome == 'misconfigured' then
      open(misconfigured_open, 'misconfigured')
      break
    end
    local failed = outcome == 'failure'
    if probe then
      if not failed then
        close()
      else
        s.fp = s.fp + 1
        if s.fo == 1 or s.fp >= probe_failures then
          s.to = s.to + 1
          open(open_seconds(), 'open')
        end
      end
      break
    end
    -- The sliding window of the last `window` outcomes, one character each.
    s.w = s.w .. (failed and '1' or '0')
    if failed then s.f = s.f + 1 end
    if #s.w > window then
      if string.sub(s.w, 1, 1) == '1' then s.f = s.f - 1 end
      s.w = string.sub(s.w, 2)
    end
    if failed then s.cf = s.cf + 1 else s.cf = 0 end
    if not failed then s.h = s.h + 1 end
    if s.h >= min_calls and s.to > 0 then
      s.to = s.to - 1
      s.h = 0
    end
    dirty = true
    if failed then
      local calls = #s.w
      if s.cf >= consecutive_max or (calls >= min_calls and s.f / calls >= failure_rate) then
        s.to = s.to + 1
        open(open_seconds(), 'open')
      end
    end
  until true
end

if dirty then
  redis.call('HSET', key, 'st', s.st, 'ro', tostring(s.ro), 'cd', tostring(s.cd), 'to', s.to, 'h', s.h,
    'po', s.po, 'ps', tostring(s.ps), 'fp', s.fp, 'fo', s.fo, 'cf', s.cf, 'f', s.f, 'w', s.w)
end

local reopen = -1
if (s.st == 'open' or s.st == 'misconfigured') and now < s.ro then
  reopen = us(s.ro - now)
elseif s.cd > now then
  reopen = us(s.cd - now)
end
local cooldown = -1
if s.cd > now then cooldown = us(s.cd - now) end
local st = state_now()
return {admission, st, reopen, cooldown, s.to, #s.w, s.f, s.cf}
"""
)

LIMIT_ACQUIRE = (
    _NOW
    + """
-- KEYS[1..B+2]: the bucket counters (hashes r, t) numbered from the client's estimate of the
--   current bucket minus B up to it plus one; KEYS[B+3]: the concurrency leases (a sorted set).
-- ARGV: B, estimated bucket, bucket seconds, rpm, tpm, max concurrency (0: none), tokens,
--   lease id, lease seconds
local buckets, est, size = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local rpm, tpm, maxc = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local tokens, lease, lease_seconds = tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9])
local leases = KEYS[buckets + 3]
local index = math.floor(now / size)
local offset = index - est
if offset < 0 or offset > 1 then
  -- The client's idea of the server's clock is off: it measures again and retries.
  return {-1, 0, 'resync', index}
end
local counts = {}
for age = 0, buckets do
  local got = redis.call('HMGET', KEYS[1 + offset + age], 'r', 't')
  counts[age + 1] = {tonumber(got[1] or '0'), tonumber(got[2] or '0')}
end
local current = KEYS[1 + offset + buckets]

-- bucket_wait() in _state_store.py, line for line.
local function wait_for(slot, need, limit)
  if need > limit then return -1 end
  local total = 0
  for age = 1, buckets + 1 do total = total + counts[age][slot] end
  local excess = total + need - limit
  if excess <= 0 then return 0 end
  local freed = 0
  for age = 1, buckets + 1 do
    freed = freed + counts[age][slot]
    if freed >= excess then
      local bucket = index - buckets + age - 1
      return math.max(0, (bucket + buckets + 1) * size - now)
    end
  end
  return math.max(0, (index + buckets + 1) * size - now)
end

local checks = {{rpm, 1, 1, 'rpm'}, {tpm, 2, tokens, 'tpm'}}
for _, check in ipairs(checks) do
  local limit, slot, need, reason = check[1], check[2], check[3], check[4]
  if limit > 0 then
    local wait = wait_for(slot, need, limit)
    if wait < 0 then return {0, -1, reason, index} end
    if wait > 0 then return {0, us(wait), reason, index} end
  end
end
if maxc > 0 then
  redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
  if redis.call('ZCARD', leases) >= maxc then
    return {0, 20000, 'concurrency', index}
  end
  redis.call('ZADD', leases, now + lease_seconds, lease)
end
local existed = redis.call('EXISTS', current)
redis.call('HINCRBY', current, 'r', 1)
redis.call('HINCRBY', current, 't', tokens)
if existed == 0 then
  -- Set once, when the bucket is created: writes never push it forward.
  redis.call('PEXPIRE', current, math.floor(size * (buckets + 2) * 1000) + 1000)
end
return {1, 0, '', index}
"""
)

LIMIT_SETTLE = """
-- KEYS[1]: the bucket the call's tokens were counted in; KEYS[2]: the leases.
-- ARGV: lease id, tokens to add (negative: give back)
redis.call('ZREM', KEYS[2], ARGV[1])
local delta = tonumber(ARGV[2])
if delta ~= 0 and redis.call('EXISTS', KEYS[1]) == 1 then
  local t = redis.call('HINCRBY', KEYS[1], 't', delta)
  if t < 0 then redis.call('HSET', KEYS[1], 't', 0) end
end
return 1
"""
