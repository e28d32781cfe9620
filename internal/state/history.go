package state

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/imapwhy/imapwhy/internal/shield"
)

// updateTries bounds the retries of an update that raced with another
// instance's update of the same user.
const updateTries = 5

// History is the shield's store in Redis, with this instance's memory
// behind it: every record read from or written to Redis is also kept
// here, and while Redis is away the memory answers alone.
type History struct {
	r     *Redis
	local *shield.MemoryStore
}

// History returns the shield's store; maxUsers bounds the memory behind it
// (Redis is bounded by its own maxmemory).
func (r *Redis) History(maxUsers int) *History {
	return &History{r: r, local: shield.NewMemoryStore(maxUsers)}
}

// stored is a record in Redis, with its expiry.
type stored struct {
	Expires time.Time     `json:"expires"`
	Record  shield.Record `json:"record"`
}

func (h *History) key(k string) string { return h.r.prefix + "h:" + k }

// Get implements shield.Store.
func (h *History) Get(key string, now time.Time) (shield.Record, bool, error) {
	if h.r.up() {
		ctx, cancel := h.r.ctx()
		raw, err := h.r.rdb.Get(ctx, h.key(key)).Bytes()
		cancel()
		switch {
		case errors.Is(err, redis.Nil):
			return shield.Record{}, false, nil
		case err == nil:
			var s stored
			if json.Unmarshal(raw, &s) != nil || !now.Before(s.Expires) {
				return shield.Record{}, false, nil
			}
			h.keep(key, now, s)
			return s.Record, true, nil
		default:
			h.r.failed("history", err)
		}
	}
	return h.local.Get(key, now)
}

// keep copies a record into memory.
func (h *History) keep(key string, now time.Time, s stored) {
	h.local.Update(key, now, func(r *shield.Record) time.Time {
		*r = s.Record
		return s.Expires
	})
}

// Update implements shield.Store: a transaction on the user's key that is
// tried again when another instance changed the key meanwhile.
func (h *History) Update(key string, now time.Time, fn func(*shield.Record) time.Time) error {
	if h.r.up() {
		err := h.update(key, now, fn)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errContended) {
			h.r.failed("history", err)
		}
	}
	return h.local.Update(key, now, fn)
}

func (h *History) update(key string, now time.Time, fn func(*shield.Record) time.Time) error {
	k := h.key(key)
	for range updateTries {
		var result stored
		ctx, cancel := h.r.ctx()
		err := h.r.rdb.Watch(ctx, func(tx *redis.Tx) error {
			var s stored
			raw, err := tx.Get(ctx, k).Bytes()
			if err != nil && !errors.Is(err, redis.Nil) {
				return err
			}
			if err == nil && (json.Unmarshal(raw, &s) != nil || !now.Before(s.Expires)) {
				s = stored{}
			}
			rec := s.Record
			expires := fn(&rec)
			result = stored{Expires: expires, Record: rec}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				if !now.Before(expires) {
					p.Del(ctx, k)
					return nil
				}
				b, err := json.Marshal(result)
				if err != nil {
					return err
				}
				p.Set(ctx, k, b, 0)
				p.PExpireAt(ctx, k, expires)
				return nil
			})
			return err
		}, k)
		cancel()
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err != nil {
			return err
		}
		h.keep(key, now, result)
		return nil
	}
	return errContended
}

// errContended: the user's record kept changing under the update; it is
// made in memory instead, without calling Redis unreachable.
var errContended = errors.New("state: the history of one user kept changing under this update")

// Close implements shield.Store; the Redis connection is closed by its
// owner.
func (h *History) Close() error { return h.local.Close() }
