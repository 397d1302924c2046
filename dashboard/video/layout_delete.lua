if redis.call('HDEL', P .. 'video:layouts', ARGV[3]) == 0 then return -1 end
local seq = emit('video', 'upsert', ARGV[4])
flush()
return seq
