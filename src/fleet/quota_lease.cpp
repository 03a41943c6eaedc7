#include <anyturn/fleet/quota_lease.hpp>

#include <algorithm>

namespace anyturn::fleet {

std::uint32_t lease_chunk(std::uint32_t max) { return std::clamp<std::uint32_t>(max / 64, 1, 256); }

std::uint32_t lease_target(std::uint32_t in_use, std::uint32_t max) {
  const std::uint64_t t = std::uint64_t{in_use} + lease_chunk(max);
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(t, max));
}

bool lease_runs_low(std::uint32_t in_use, std::uint32_t lease, std::uint32_t max) {
  if (lease >= max) return false;
  const std::uint32_t low_water = (lease_chunk(max) + 1) / 2;
  return in_use >= lease || lease - in_use < low_water;
}

// Runs atomically in Redis (see the header). Time is Redis' own clock, so
// the nodes' clocks need not agree.
const std::string_view lease_script = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local me = ARGV[1]
local asked = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local used = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local need = ARGV[6] == '1'
local fields = redis.call('HGETALL', KEYS[1])
local others = 0
local starved_by_other = false
for i = 1, #fields, 2 do
  local f, v = fields[i], fields[i + 1]
  if f == '!starved' then
    local who, exp = string.match(v, '^(.*):(%d+)$')
    if exp == nil or tonumber(exp) <= now then
      redis.call('HDEL', KEYS[1], f)
    elseif who ~= me then
      starved_by_other = true
    end
  elseif f ~= me then
    local units, exp = string.match(v, '^(%d+):(%d+)$')
    if units == nil or tonumber(exp) <= now then
      redis.call('HDEL', KEYS[1], f)
    else
      others = others + tonumber(units)
    end
  end
end
local want = asked
if starved_by_other and not need and used < want then want = used end
local grant = math.min(want, max - others)
if grant < 0 then grant = 0 end
if grant < asked and grant < want then
  redis.call('HSET', KEYS[1], '!starved', me .. ':' .. (now + ttl))
end
local record = math.max(grant, used)
redis.call('HSET', KEYS[1], me, record .. ':' .. (now + ttl))
redis.call('PEXPIRE', KEYS[1], ttl)
return grant
)lua";

}  // namespace anyturn::fleet
