// Package state shares what instances of imapwhy behind a load balancer
// remember, through Redis (or Valkey): the shield's history and failure
// windows, the login rate limits and the incident pages.
//
// Redis is never needed for a login. Every command has a short timeout;
// when one fails the instance says so once (a warning, the
// imapwhy_state_degraded metric, /healthz "degraded") and goes on with its
// own memory, without asking Redis again, until a ping every second finds
// it back.
//
// Nothing secret goes to Redis in clear: the history holds the shield's
// keyed verifiers under keyed user names, the limits are counted under
// keyed names, and incidents are encrypted (AES-GCM) under keyed IDs, all
// with the secret every instance shares.
package state

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/metrics"
	"github.com/imapwhy/imapwhy/internal/shield"
)

// recheckEvery is how often an instance that lost Redis pings it;
// watchEvery how often it pings a Redis it has, so that an idle instance
// reports an outage too.
const (
	recheckEvery = time.Second
	watchEvery   = 5 * time.Second
)

// Options are what the configuration does not hold.
type Options struct {
	Log     zerolog.Logger
	Metrics *metrics.Metrics
	// Recheck overrides recheckEvery (tests); 0: one second.
	Recheck time.Duration
}

// Redis is the shared state of one instance. Its methods are safe for
// concurrent use.
type Redis struct {
	rdb     *redis.Client
	prefix  string
	timeout time.Duration
	secret  [shield.SecretSize]byte
	log     zerolog.Logger
	m       *metrics.Metrics
	recheck time.Duration

	down     atomic.Bool
	mu       sync.Mutex
	reason   string
	stopping chan struct{}
	wg       sync.WaitGroup
	closed   sync.Once
}

// Open connects to the Redis of c. The secret comes from c's secret_file,
// else stateDir/secret (made when missing): every instance must hold the
// same. A Redis that cannot be reached now is not an error (the instance
// starts degraded); a Redis that holds another secret's state is.
func Open(c config.Redis, stateDir string, opts Options) (*Redis, error) {
	var secret [shield.SecretSize]byte
	var err error
	if c.SecretFile != "" {
		secret, err = shield.ReadSecret(c.SecretFile)
	} else {
		secret, err = shield.LoadSecret(stateDir)
	}
	if err != nil {
		return nil, fmt.Errorf("state.redis: %w", err)
	}
	ro := &redis.Options{
		Addr:            c.Address,
		Username:        c.Username,
		DB:              c.DB,
		DialTimeout:     c.Timeout.D(),
		ReadTimeout:     c.Timeout.D(),
		WriteTimeout:    c.Timeout.D(),
		PoolTimeout:     c.Timeout.D(),
		MaxRetries:      -1, // a retry would double the wait of a login
		DisableIdentity: true,
	}
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("state.redis.password_file: %w", err)
		}
		ro.Password = strings.TrimRight(string(b), "\r\n")
	}
	if c.TLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return nil, fmt.Errorf("state.redis.ca_file: %w", err)
			}
			if tc.RootCAs, err = x509.SystemCertPool(); err != nil {
				tc.RootCAs = x509.NewCertPool()
			}
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("state.redis.ca_file: %s holds no PEM certificate", c.CAFile)
			}
		}
		ro.TLSConfig = tc
	}
	quietRedis.Do(func() { redis.SetLogger(quiet{}) })
	r := &Redis{
		rdb:      redis.NewClient(ro),
		prefix:   c.KeyPrefix,
		timeout:  c.Timeout.D(),
		secret:   secret,
		log:      opts.Log,
		m:        opts.Metrics,
		recheck:  opts.Recheck,
		stopping: make(chan struct{}),
	}
	if r.recheck <= 0 {
		r.recheck = recheckEvery
	}
	r.m.StateDegraded(false)
	if err := r.checkSecret(); err != nil {
		if errors.Is(err, errOtherSecret) {
			r.rdb.Close()
			return nil, err
		}
		r.failed("ping", err)
	} else {
		r.log.Info().Str("event", "state_connected").Str("redis", c.Address).Msg("shared state in Redis")
	}
	r.wg.Add(1)
	go r.monitor()
	return r, nil
}

// monitor pings Redis: every recheck while it is away, until it answers
// again; every watchEvery while it is up, so that an idle instance notices
// an outage too.
func (r *Redis) monitor() {
	defer r.wg.Done()
	t := time.NewTicker(r.recheck)
	defer t.Stop()
	var since time.Duration
	for {
		select {
		case <-r.stopping:
			return
		case <-t.C:
		}
		if !r.up() {
			r.tryRecover()
			continue
		}
		if since += r.recheck; since < r.recheck*(watchEvery/recheckEvery) {
			continue
		}
		since = 0
		ctx, cancel := r.ctx()
		err := r.rdb.Ping(ctx).Err()
		cancel()
		if err != nil {
			r.failed("ping", err)
		}
	}
}

// quiet drops go-redis's own log lines (plain text on stderr, one per
// failed dial): the failures are reported once, as state_degraded, with a
// metric for each.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

var quietRedis sync.Once

var errOtherSecret = errors.New("state.redis: this Redis holds state keyed with another secret; give every instance the same secret file")

// checkSecret stores a check value of the secret, or compares it with the
// one there.
func (r *Redis) checkSecret() error {
	want := hex.EncodeToString(r.keyed("check", "imapwhy state v1"))
	ctx, cancel := r.ctx()
	defer cancel()
	k := r.prefix + "secret-check"
	if err := r.rdb.SetNX(ctx, k, want, 0).Err(); err != nil {
		return err
	}
	got, err := r.rdb.Get(ctx, k).Result()
	if err != nil {
		return err
	}
	if got != want {
		return errOtherSecret
	}
	return nil
}

// Secret is the key of the shield's verifiers and user keys.
func (r *Redis) Secret() [shield.SecretSize]byte { return r.secret }

// keyed is HMAC-SHA256(secret, purpose, s).
func (r *Redis) keyed(purpose, s string) []byte {
	m := hmac.New(sha256.New, r.secret[:])
	io.WriteString(m, "imapwhy state "+purpose+"\x00")
	io.WriteString(m, s)
	return m.Sum(nil)
}

// ctx bounds one operation.
func (r *Redis) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), r.timeout)
}

// up reports whether Redis is to be asked now.
func (r *Redis) up() bool { return !r.down.Load() }

// errDown is what operations return while Redis is known to be away.
var errDown = errors.New("state: Redis unreachable, using this instance's memory")

// failed notes a failed operation of kind: the first failure makes the
// instance degraded until monitor finds Redis back.
func (r *Redis) failed(kind string, err error) {
	if errors.Is(err, redis.Nil) {
		return
	}
	r.m.StateError(kind)
	if r.down.Swap(true) {
		return
	}
	r.mu.Lock()
	r.reason = "Redis unreachable: " + err.Error()
	r.mu.Unlock()
	r.m.StateDegraded(true)
	r.log.Warn().Str("event", "state_degraded").Str("kind", kind).Err(err).
		Msg("shared state unreachable; this instance goes on with its own memory")
}

// tryRecover pings Redis and, if it answers with the same secret, uses it
// again.
func (r *Redis) tryRecover() {
	err := r.checkSecret()
	if errors.Is(err, errOtherSecret) {
		r.log.Error().Str("event", "state_secret_mismatch").Err(err).Msg("shared state not used")
	}
	if err != nil {
		return
	}
	r.mu.Lock()
	r.reason = ""
	r.mu.Unlock()
	r.down.Store(false)
	r.m.StateDegraded(false)
	r.log.Info().Str("event", "state_recovered").Msg("shared state reachable again")
}

// Degraded is why the instance works without its shared state, "" when
// it does not (for /healthz).
func (r *Redis) Degraded() string {
	if r == nil || r.up() {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reason
}

// Close stops the pings and closes the connections.
func (r *Redis) Close() error {
	var err error
	r.closed.Do(func() {
		close(r.stopping)
		r.wg.Wait()
		err = r.rdb.Close()
	})
	return err
}
