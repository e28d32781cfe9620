package state

import (
	"encoding/hex"

	"github.com/redis/go-redis/v9"

	"github.com/imapwhy/imapwhy/internal/shield"
)

// tokenBuckets takes up to n tokens (as many as there are) from each
// bucket KEYS[i], which holds burst tokens and refills at that many a
// minute (ARGV[2i-1] = burst, ARGV[2i] = n), by Redis's own clock, so that
// the instances' clocks do not matter. It returns for each bucket 1 if it
// had a token before.
var tokenBuckets = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i, key in ipairs(KEYS) do
  local burst = tonumber(ARGV[2 * i - 1])
  local n = tonumber(ARGV[2 * i])
  local v = redis.call('HMGET', key, 'tokens', 'ms')
  local tokens = tonumber(v[1])
  local last = tonumber(v[2])
  if tokens == nil or last == nil then
    tokens = burst
    last = now
  end
  if now > last then
    tokens = math.min(burst, tokens + (now - last) * burst / 60000)
  end
  out[i] = 0
  if tokens >= 1 then
    out[i] = 1
  end
  if n > 0 then
    tokens = tokens - math.min(n, math.floor(tokens))
    redis.call('HSET', key, 'tokens', tostring(tokens), 'ms', tostring(now))
    redis.call('PEXPIRE', key, 61000)
  end
end
return out
`)

// Limiter is the login rate limits in Redis (shield.SharedLimiter).
type Limiter struct{ r *Redis }

// Limiter returns the shared login rate limits.
func (r *Redis) Limiter() *Limiter { return &Limiter{r: r} }

// Take implements shield.SharedLimiter, in one script call. The keys (a
// user name, an address prefix) are stored keyed with the secret.
func (l *Limiter) Take(buckets ...shield.Bucket) ([]bool, error) {
	if !l.r.up() {
		return nil, errDown
	}
	keys := make([]string, len(buckets))
	args := make([]any, 0, 2*len(buckets))
	for i, b := range buckets {
		keys[i] = l.r.prefix + "l:" + b.Kind + ":" + hex.EncodeToString(l.r.keyed("limit "+b.Kind, b.Key)[:16])
		args = append(args, b.PerMinute, b.N)
	}
	ctx, cancel := l.r.ctx()
	defer cancel()
	res, err := tokenBuckets.Run(ctx, l.r.rdb, keys, args...).Int64Slice()
	if err != nil {
		l.r.failed("limit", err)
		return nil, err
	}
	had := make([]bool, len(res))
	for i, v := range res {
		had[i] = v == 1
	}
	return had, nil
}
