//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// The idle test holds thousands of sessions, which Dovecot (a process per
// session) cannot serve on a small machine: its upstream is go-imap's
// in-memory server, in the driver's own process, so that it costs the
// proxies nothing.

// idleWorkers is how many sessions are opened at once.
const idleWorkers = 16

// startMemUpstream serves the benchmark user (with an empty INBOX) on a
// free port of host, accepting plaintext logins.
func startMemUpstream(host string) (*imapserver.Server, string, error) {
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(benchUser, benchPassword)
	if err := u.Create("INBOX", nil); err != nil {
		return nil, "", err
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIdle: {}},
		InsecureAuth: true,
		// Connections reset at the end of the test are not news.
		Logger: log.New(io.Discard, "", 0),
	})
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, "", err
	}
	go srv.Serve(ln)
	return srv, ln.Addr().String(), nil
}

// idleLevel is the proxy's memory with a number of idle sessions open.
type idleLevel struct {
	Sessions   int
	RSS        int64      // bytes
	PerSession float64    // (RSS - RSS before the first session) / Sessions, bytes
	Marginal   float64    // RSS growth since the previous level per session added, bytes
	Go         *goRuntime // the Go runtime's own figures (imapwhy), nil if unknown
}

// idleResult is the idle test of one proxy.
type idleResult struct {
	Target target
	Base   int64      // RSS before the first session
	BaseGo *goRuntime // the Go runtime's figures before the first session, nil if unknown
	Levels []idleLevel
	Failed int   // sessions that could not be opened or did not survive
	Held   int   // sessions that answered DONE at the end
	Err    error // why the test stopped early, if it did
}

// idleSession is an open session in IDLE.
type idleSession struct {
	c   *client
	tag string
}

// idleMemory opens sessions in IDLE through t up to each level in turn
// and reads the proxy's RSS at each, after settle. At the end every
// session must still answer DONE.
func idleMemory(ctx context.Context, t target, levels []int, settle time.Duration) idleResult {
	res := idleResult{Target: t}
	// The base is the proxy before any session: what the first sessions
	// set up once (for imapwhy, the shield's first Argon2id hash, garbage
	// the runtime keeps for a while) counts against them, so the average
	// errs on the high side at low counts; the marginal figures do not.
	// A warm-up would leave that garbage in the base instead, which the
	// runtime returns to the system only after its next collection: the
	// averages came out negative.
	rss, err := stableRSS(ctx, t, settle)
	if err != nil {
		res.Err = err
		return res
	}
	res.Base = rss
	res.BaseGo = readGoRuntime(ctx, t)
	prev, prevN := rss, 0
	var open []idleSession
	defer func() { closeIdle(open) }()
	for _, n := range levels {
		more, failed := openIdle(ctx, t, n-len(open), &res)
		open = append(open, more...)
		res.Failed += failed
		if res.Err != nil {
			return res
		}
		rss, err := stableRSS(ctx, t, settle)
		if err != nil {
			res.Err = err
			return res
		}
		res.Levels = append(res.Levels, idleLevel{
			Sessions:   len(open),
			RSS:        rss,
			PerSession: float64(rss-res.Base) / float64(len(open)),
			Marginal:   float64(rss-prev) / float64(len(open)-prevN),
			Go:         readGoRuntime(ctx, t),
		})
		prev, prevN = rss, len(open)
	}
	held, lost := checkIdle(open)
	res.Held, res.Failed = held, res.Failed+lost
	open = nil // checkIdle logged them out
	return res
}

// readGoRuntime reads the Go runtime's figures of t's proxy, if it is an
// imapwhy with its admin listener; nil otherwise or on error.
func readGoRuntime(ctx context.Context, t target) *goRuntime {
	p, ok := t.Proxy.(*imapwhyProc)
	if !ok {
		return nil
	}
	g, ok, err := p.goRuntime(ctx)
	if err != nil {
		log.Printf("%s: %v", t, err)
	}
	if !ok {
		return nil
	}
	return &g
}

// stableRSS waits settle, then until the proxy's RSS stops moving (less
// than 1% in a second; at most stableWait), and returns it. A Go process
// returns freed memory to the system gradually, so a reading taken at
// once would count garbage from the logins as memory of the sessions.
func stableRSS(ctx context.Context, t target, settle time.Duration) (int64, error) {
	const stableWait = 60 * time.Second
	if err := sleepCtx(ctx, settle); err != nil {
		return 0, err
	}
	u, err := t.proxyUsage()
	if err != nil {
		return 0, err
	}
	for end := time.Now().Add(stableWait); time.Now().Before(end); {
		if err := sleepCtx(ctx, time.Second); err != nil {
			return 0, err
		}
		v, err := t.proxyUsage()
		if err != nil {
			return 0, err
		}
		if d := v.RSS - u.RSS; max(d, -d) <= u.RSS/100 {
			return v.RSS, nil
		}
		u = v
	}
	return u.RSS, nil
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// openIdle opens n sessions in IDLE with idleWorkers at a time. It
// returns those it opened and the number of failures; after too many it
// gives up and sets res.Err.
func openIdle(ctx context.Context, t target, n int, res *idleResult) ([]idleSession, int) {
	var (
		mu       sync.Mutex
		sessions []idleSession
		failed   int
		lastErr  error
		next     atomic.Int64
		wg       sync.WaitGroup
	)
	giveUp := max(10, n/100)
	for range idleWorkers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				s, err := openIdleSession(ctx, t)
				mu.Lock()
				if err != nil {
					failed++
					lastErr = err
				} else {
					sessions = append(sessions, s)
				}
				stop := failed > giveUp
				mu.Unlock()
				if stop {
					return
				}
			}
		})
	}
	wg.Wait()
	switch {
	case failed > giveUp:
		res.Err = fmt.Errorf("%d sessions failed to open, the last: %w", failed, lastErr)
	case ctx.Err() != nil:
		res.Err = ctx.Err()
	}
	return sessions, failed
}

// openIdleSession logs in, selects INBOX and starts IDLE, as a mail app
// waiting for new mail does.
func openIdleSession(ctx context.Context, t target) (idleSession, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := login(ctx, t.Addr, t.TLS, idleReadBuffer)
	if err != nil {
		return idleSession{}, err
	}
	if err := c.command("SELECT INBOX"); err != nil {
		c.Close()
		return idleSession{}, err
	}
	tag, err := c.send("IDLE")
	if err == nil {
		err = c.waitContinuation()
	}
	if err != nil {
		c.Close()
		return idleSession{}, fmt.Errorf("IDLE: %w", err)
	}
	c.nc.SetDeadline(time.Time{})
	return idleSession{c: c, tag: tag}, nil
}

// checkIdle ends every session's IDLE with DONE and logs it out; it
// returns how many answered and how many did not.
func checkIdle(ss []idleSession) (held, lost int) {
	var n atomic.Int64
	forEachIdle(ss, func(s idleSession) {
		s.c.nc.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := s.c.nc.Write([]byte("DONE\r\n")); err != nil {
			return
		}
		if s.c.waitTagged(s.tag) == nil {
			n.Add(1)
		}
		s.c.logout()
	})
	return int(n.Load()), len(ss) - int(n.Load())
}

// closeIdle closes every session's connection.
func closeIdle(ss []idleSession) {
	forEachIdle(ss, func(s idleSession) { s.c.Close() })
}

// forEachIdle calls f for every session, idleWorkers at a time.
func forEachIdle(ss []idleSession, f func(idleSession)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range idleWorkers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(ss)); i = next.Add(1) - 1 {
				f(ss[i])
			}
		})
	}
	wg.Wait()
}
