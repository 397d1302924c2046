-- Nearest free units to (ARGV[3], ARGV[4]) for ARGV[8] queries at once (one round trip):
-- each query ARGV[b..b+3] = kind, how many, resource kind ('' = any), the free status.
-- The circle starts at ARGV[5] m and widens up to ARGV[6]; ARGV[7] a scope ('' = all).
-- Returns, per query, its rows {id, distance, state JSON, revision}, nearest first.
local lon, lat = ARGV[3], ARGV[4]
local first, maxr, scope = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7] or ''
-- a scoped user's units: their grid code starts with the scope (dashboard/scope.py)
local function in_scope(rec)
  if scope == '' then return true end
  if not (string.find(rec, '"grid_id":"' .. scope, 1, true) or
          string.find(rec, '"grid_id": "' .. scope, 1, true)) then return false end
  local grid = cjson.decode(rec).grid_id
  return type(grid) == 'string' and string.sub(grid, 1, #scope) == scope
end
local function search(kind, want, rkind, free)
  local geo, state = P .. 'geo:' .. kind, P .. 'state:' .. kind
  local busy = P .. 'task:unit:' .. kind .. ':'
  local tight, loose = '"kind":"' .. rkind .. '"', '"kind": "' .. rkind .. '"'
  local radius, fetch = first, math.max(want * 4, 16)
  local checked = {}
  while true do
    local rows = redis.call('GEOSEARCH', geo, 'FROMLONLAT', lon, lat, 'BYRADIUS', radius,
      'm', 'ASC', 'COUNT', fetch, 'WITHDIST')
    local out = {}
    for _, row in ipairs(rows) do
      local id = row[1]
      local ok = checked[id]  -- false, or the revision it was found free at
      local rec = nil
      if ok == nil then
        ok = false
        local rev, _, status = meta_of(kind, id)
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
          if ok and in_scope(rec) then ok = rev else ok = false end
        end
        checked[id] = ok
      end
      if ok then
        out[#out + 1] = {id, row[2], rec or redis.call('HGET', state, id), ok}
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
end
local answers = {}
for i = 0, tonumber(ARGV[8]) - 1 do
  local b = 9 + i * 4
  local want = tonumber(ARGV[b + 1])
  answers[#answers + 1] = want > 0 and search(ARGV[b], want, ARGV[b + 2], ARGV[b + 3]) or {}
end
return answers
