local kind, lon, lat = ARGV[3], ARGV[4], ARGV[5]
local radius, maxr = tonumber(ARGV[6]), tonumber(ARGV[7])
local want, rkind, free, scope = tonumber(ARGV[8]), ARGV[9], ARGV[10], ARGV[11] or ''
local geo, state = P .. 'geo:' .. kind, P .. 'state:' .. kind
local busy = P .. 'task:unit:' .. kind .. ':'
local tight, loose = '"kind":"' .. rkind .. '"', '"kind": "' .. rkind .. '"'
-- a scoped user's units: their grid code starts with the scope (dashboard/scope.py)
local function in_scope(rec)
  if scope == '' then return true end
  if not (string.find(rec, '"grid_id":"' .. scope, 1, true) or
          string.find(rec, '"grid_id": "' .. scope, 1, true)) then return false end
  local grid = cjson.decode(rec).grid_id
  return type(grid) == 'string' and string.sub(grid, 1, #scope) == scope
end
local fetch = math.max(want * 4, 16)
local checked = {}
while true do
  local rows = redis.call('GEOSEARCH', geo, 'FROMLONLAT', lon, lat, 'BYRADIUS', radius, 'm',
    'ASC', 'COUNT', fetch, 'WITHDIST')
  local out = {}
  for _, row in ipairs(rows) do
    local id = row[1]
    local ok = checked[id]
    local rec = nil
    if ok == nil then
      ok = false
      local _, _, status = meta_of(kind, id)
      if status == free and redis.call('EXISTS', busy .. id) == 0 then
        rec = redis.call('HGET', state, id)
        if rec and rkind ~= '' then
          -- a cheap text test first; decode only the likely matches
          if string.find(rec, tight, 1, true) or string.find(rec, loose, 1, true) then
            ok = cjson.decode(rec).kind == rkind
          end
        else
          ok = rec ~= nil and rec ~= false
        end
        if ok then ok = in_scope(rec) end
      end
      checked[id] = ok
    end
    if ok then
      out[#out + 1] = {id, row[2], rec or redis.call('HGET', state, id)}
      if #out >= want then return out end
    end
  end
  if #rows >= fetch then
    fetch = fetch * 4          -- the circle holds more: look further down the list
  elseif radius < maxr then
    radius = math.min(radius * 2, maxr)   -- the circle is exhausted: widen it
  else
    return out
  end
end
