-- Save one rotation under its name (ARGV[3]) as JSON (ARGV[4]); a new name past the cap
-- (ARGV[5]) is refused with -1. No frame: a running wall reads its rotation again each cycle.
local key = P .. 'rotations'
if redis.call('HEXISTS', key, ARGV[3]) == 0 and
    redis.call('HLEN', key) >= tonumber(ARGV[5]) then return -1 end
redis.call('HSET', key, ARGV[3], ARGV[4])
return 1
