local removed = 0
for _, key in ipairs(KEYS) do
  local consumers = redis.pcall('XINFO', 'CONSUMERS', key, ARGV[1])
  if type(consumers) == 'table' and not consumers.err then
    for _, row in ipairs(consumers) do
      local info = {}
      for i = 1, #row, 2 do info[row[i]] = row[i + 1] end
      if info.name ~= ARGV[2] and info.pending == 0 and info.idle > tonumber(ARGV[3]) then
        redis.call('XGROUP', 'DELCONSUMER', key, ARGV[1], info.name)
        removed = removed + 1
      end
    end
  end
end
return removed
