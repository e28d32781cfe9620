package state

import (
	"encoding/hex"

	"github.com/redis/go-redis/v9"
)

// tokenBucket takes up to ARGV[2] tokens (as many as there are) from the
// bucket at KEYS[1], which holds ARGV[1] tokens and refills at that many a
// minute, by Redis's own clock, so that the instances' clocks do not
// matter. It returns 1 if the bucket had a token before.
var tokenBucket = redis.NewScript(`
local burst = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('HMGET', KEYS[1], 'tokens', 'ms')
local tokens = tonumber(v[1])
local last = tonumber(v[2])
if tokens == nil or last == nil then
  tokens = burst
  last = now
end
if now > last then
  tokens = math.min(burst, tokens + (now - last) * burst / 60000)
end
local had = 0
if tokens >= 1 then
  had = 1
end
if n > 0 then
  tokens = tokens - math.min(n, math.floor(tokens))
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ms', tostring(now))
  redis.call('PEXPIRE', KEYS[1], 61000)
end
return had
`)

// Limiter is the login rate limits in Redis (shield.SharedLimiter).
type Limiter struct{ r *Redis }

// Limiter returns the shared login rate limits.
func (r *Redis) Limiter() *Limiter { return &Limiter{r: r} }

// Take implements shield.SharedLimiter. The key (a user name, an address
// prefix) is stored keyed with the secret.
func (l *Limiter) Take(kind, key string, perMinute, n int) (bool, error) {
	if !l.r.up() {
		return false, errDown
	}
	k := l.r.prefix + "l:" + kind + ":" + hex.EncodeToString(l.r.keyed("limit "+kind, key)[:16])
	ctx, cancel := l.r.ctx()
	defer cancel()
	had, err := tokenBucket.Run(ctx, l.r.rdb, []string{k}, perMinute, n).Int()
	if err != nil {
		l.r.failed("limit", err)
		return false, err
	}
	return had == 1, nil
}
