local key = P .. 'video:wall'
local cur = redis.call('GET', key) or ''
if cur ~= ARGV[3] then return false end
if ARGV[4] ~= '' then redis.call('SET', key, ARGV[4]) end
local seq = emit('video', 'upsert', ARGV[5])
flush()
return seq
