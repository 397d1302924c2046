local key = P .. 'video:layouts'
if redis.call('HEXISTS', key, ARGV[3]) == 0 and
    redis.call('HLEN', key) >= tonumber(ARGV[5]) then return -1 end
redis.call('HSET', key, ARGV[3], ARGV[4])
local seq = emit('video', 'upsert', ARGV[6])
flush()
return seq
