package state

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/imapwhy/imapwhy/internal/notify/incident"
)

// hourKeep is how long a failure count per hour is kept: the status
// page's chart spans a day.
const hourKeep = 25 * time.Hour

// Incidents keeps incident pages in Redis (incident.Shared), encrypted:
// they name the user and the client's address.
type Incidents struct {
	r    *Redis
	aead cipher.AEAD
	max  int
}

// Incidents returns the shared incident store; at most max are listed on
// the status page.
func (r *Redis) Incidents(max int) *Incidents {
	block, _ := aes.NewCipher(r.keyed("incident key", "")) // 32 bytes: AES-256
	aead, _ := cipher.NewGCM(block)
	return &Incidents{r: r, aead: aead, max: max}
}

// idKey is the key of an incident: the ID itself, a bearer secret, is not
// written to Redis.
func (s *Incidents) idKey(id string) string {
	return hex.EncodeToString(s.r.keyed("incident id", id)[:16])
}

func (s *Incidents) recentKey() string   { return s.r.prefix + "i:recent" }
func (s *Incidents) key(k string) string { return s.r.prefix + "i:" + k }
func (s *Incidents) hourKey(h int64) string {
	return s.r.prefix + "i:hour:" + strconv.FormatInt(h, 10)
}

func (s *Incidents) seal(in incident.Incident, k string) ([]byte, error) {
	plain, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, plain, []byte(k)), nil
}

func (s *Incidents) open(b []byte, k string) (incident.Incident, error) {
	var in incident.Incident
	n := s.aead.NonceSize()
	if len(b) < n {
		return in, errors.New("state: incident record too short")
	}
	plain, err := s.aead.Open(nil, b[:n], b[n:], []byte(k))
	if err != nil {
		return in, err
	}
	return in, json.Unmarshal(plain, &in)
}

// Put implements incident.Shared.
func (s *Incidents) Put(in incident.Incident, ttl time.Duration) error {
	if !s.r.up() {
		return errDown
	}
	k := s.idKey(in.ID)
	b, err := s.seal(in, k)
	if err != nil {
		return err
	}
	hk := s.hourKey(in.Time.Unix() / 3600)
	cutoff := in.Time.Add(-ttl).UnixMilli()
	ctx, cancel := s.r.ctx()
	defer cancel()
	_, err = s.r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.key(k), b, ttl)
		p.ZAdd(ctx, s.recentKey(), redis.Z{Score: float64(in.Time.UnixMilli()), Member: k})
		p.ZRemRangeByScore(ctx, s.recentKey(), "-inf", strconv.FormatInt(cutoff, 10))
		p.ZRemRangeByRank(ctx, s.recentKey(), 0, int64(-s.max-1))
		p.Incr(ctx, hk)
		p.Expire(ctx, hk, hourKeep)
		return nil
	})
	if err != nil {
		s.r.failed("incident", err)
	}
	return err
}

// Get implements incident.Shared.
func (s *Incidents) Get(id string) (incident.Incident, bool, error) {
	if !s.r.up() {
		return incident.Incident{}, false, errDown
	}
	k := s.idKey(id)
	ctx, cancel := s.r.ctx()
	defer cancel()
	b, err := s.r.rdb.Get(ctx, s.key(k)).Bytes()
	if errors.Is(err, redis.Nil) {
		return incident.Incident{}, false, nil
	}
	if err != nil {
		s.r.failed("incident", err)
		return incident.Incident{}, false, err
	}
	in, err := s.open(b, k)
	if err != nil || in.ID != id {
		return incident.Incident{}, false, nil
	}
	return in, true, nil
}

// Recent implements incident.Shared.
func (s *Incidents) Recent(limit int) ([]incident.Incident, error) {
	if !s.r.up() {
		return nil, errDown
	}
	ctx, cancel := s.r.ctx()
	defer cancel()
	ks, err := s.r.rdb.ZRevRange(ctx, s.recentKey(), 0, int64(limit-1)).Result()
	if err != nil {
		s.r.failed("incident", err)
		return nil, err
	}
	if len(ks) == 0 {
		return nil, nil
	}
	full := make([]string, len(ks))
	for i, k := range ks {
		full[i] = s.key(k)
	}
	vals, err := s.r.rdb.MGet(ctx, full...).Result()
	if err != nil {
		s.r.failed("incident", err)
		return nil, err
	}
	out := make([]incident.Incident, 0, len(vals))
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue // expired
		}
		if in, err := s.open([]byte(str), ks[i]); err == nil {
			out = append(out, in)
		}
	}
	return out, nil
}

// Hourly implements incident.Shared.
func (s *Incidents) Hourly(hours []int64) ([]int, error) {
	if !s.r.up() {
		return nil, errDown
	}
	ks := make([]string, len(hours))
	for i, h := range hours {
		ks[i] = s.hourKey(h)
	}
	ctx, cancel := s.r.ctx()
	defer cancel()
	vals, err := s.r.rdb.MGet(ctx, ks...).Result()
	if err != nil {
		s.r.failed("incident", err)
		return nil, err
	}
	out := make([]int, len(vals))
	for i, v := range vals {
		if str, ok := v.(string); ok {
			out[i], _ = strconv.Atoi(str)
		}
	}
	return out, nil
}
