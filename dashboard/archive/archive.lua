local P = ARGV[1]
local m = tonumber(ARGV[3])
local months, blobs = {}, {}
local b = 4
for i = 1, m do
  months[i] = ARGV[b]; blobs[i] = ARGV[b + 1]; b = b + 3
end
local widths = {4, 4, 4, 4, 4, 1, 1, 1, 1, 1, 1, 2, 2, 2}
local names = {'report', 'dispatch', 'arrive', 'handle', 'close', 'sev', 'cat', 'src',
  'type', 'status', 'flags', 'town', 'community', 'grid'}
local cols, ids, counts, done = {}, {}, {}, {}
for i = 1, m do cols[i] = {}; ids[i] = {}; counts[i] = 0 end
local rows = {}
while b <= #ARGV do
  local id, meta, mi, row, tids = ARGV[b], ARGV[b + 1], tonumber(ARGV[b + 2]), ARGV[b + 3],
    ARGV[b + 4]
  b = b + 5
  if redis.call('HGET', P .. 'meta:event', id) == meta then
    local status = string.sub(meta, string.find(meta, '|[^|]*$') + 1)
    redis.call('HDEL', P .. 'state:event', id)
    redis.call('HDEL', P .. 'meta:event', id)
    redis.call('ZREM', P .. 'geo:event', id)
    redis.call('SREM', P .. 'events:open', id)
    redis.call('ZREM', P .. 'events:ts', id)
    redis.call('DEL', P .. 'timeline:' .. id)
    redis.call('DEL', P .. 'task:event:' .. id)
    redis.call('HINCRBY', P .. 'count:event', status, -1)
    for tid in string.gmatch(tids, '[^,]+') do
      redis.call('HDEL', P .. 'state:task', tid)
      redis.call('SREM', P .. 'tasks:open', tid)
    end
    counts[mi] = counts[mi] + 1
    rows[#rows + 1] = {mi, row}
    ids[mi][#ids[mi] + 1] = id
    done[#done + 1] = id
  end
end
local chunk = {}
for i = 1, m do
  if counts[i] > 0 then
    local key = P .. 'archive:' .. months[i]
    local c = redis.call('HINCRBY', key .. ':meta', 'chunks', 1)
    redis.call('HINCRBY', key .. ':meta', 'rows', counts[i])
    redis.call('HSET', key .. ':json', c, blobs[i])
    redis.call('SADD', P .. 'archive:months', months[i])
    chunk[i] = string.char(c % 256, math.floor(c / 256) % 256,
      math.floor(c / 65536) % 256, math.floor(c / 16777216) % 256)
  end
end
for _, r in ipairs(rows) do
  local mi, row = r[1], r[2]
  local off = 1
  for k = 1, #widths do
    local t = cols[mi][k]
    if not t then t = {}; cols[mi][k] = t end
    t[#t + 1] = string.sub(row, off, off + widths[k] - 1)
    off = off + widths[k]
  end
  local t = cols[mi][15]
  if not t then t = {}; cols[mi][15] = t end
  t[#t + 1] = chunk[mi]
end
for i = 1, m do
  if counts[i] > 0 then
    local key = P .. 'archive:' .. months[i] .. ':'
    for k = 1, #names do redis.call('APPEND', key .. names[k], table.concat(cols[i][k])) end
    redis.call('APPEND', key .. 'chunk', table.concat(cols[i][15]))
    redis.call('APPEND', key .. 'id', table.concat(ids[i], '\n') .. '\n')
  end
end
if #done > 0 then redis.call('INCR', P .. 'stats:ver') end
return done
