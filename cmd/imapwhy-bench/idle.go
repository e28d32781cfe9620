//go:build linux

package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// idleWorkers is how many sessions are opened at once.
const idleWorkers = 16

// minIdleSettle is the least wait between the last session opened and
// the first memory reading: imapwhy parks a forwarded session that has
// been quiet for about a second (its goroutines end, its sockets wait in
// an epoll set), and a reading taken sooner would count sessions not yet
// parked.
const minIdleSettle = 3 * time.Second

// idleOpenTimeout bounds the opening of one idle session (connect, TLS,
// LOGIN, SELECT, IDLE): a proxy out of file descriptors leaves the
// connection in its listen queue, unanswered.
const idleOpenTimeout = 10 * time.Second

// idleLevel is the proxy's memory with a number of idle sessions open.
type idleLevel struct {
	Asked      int        // the sessions this level asked for
	Sessions   int        // the sessions open when it was read
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
	Files  []fileUse // the proxy's processes at the last level read
	Failed int       // sessions that could not be opened or did not survive
	Held   int       // sessions that answered DONE at the end
	Stop   *idleStop // why the test stopped short of a level, if it did
	Err    error     // why the test broke off (no reading possible), if it did
}

// idleStop is what stopped the idle test short of a level: the sessions
// it held then, the last failure, which processes were at their
// open-file limit, and what the proxy's error log said about it.
type idleStop struct {
	Asked, Held int
	Err         error
	Full        []namedFileUse // processes with no room for one more session's descriptors
	LogLine     string         // the proxy's first log line about open files, "" if none
	LogLines    int            // lines like it
}

// namedFileUse is the file use of one process in the idle test.
type namedFileUse struct {
	Who string // "imapwhy", "nginx worker", "the driver", "the upstream"
	fileUse
}

// idleSession is an open session in IDLE.
type idleSession struct {
	c   *client
	tag string
}

// idleMemory opens sessions in IDLE through t up to each level in turn
// and reads the proxy's RSS at each, after settle. If a level cannot be
// reached (too many sessions fail to open), the sessions held then are
// read as a last, short level, and what stopped it is recorded. At the
// end every session must still answer DONE. upstream is the pid of the
// upstream's process.
func idleMemory(ctx context.Context, t target, levels []int, settle time.Duration, upstream int) idleResult {
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
		more, failed, lastErr := openIdle(ctx, t, n-len(open))
		open = append(open, more...)
		res.Failed += failed
		if err := ctx.Err(); err != nil {
			res.Err = err
			return res
		}
		if len(open) < n {
			res.Stop = whatStopped(t, upstream, n, len(open), lastErr)
			log.Printf("%s: %d of %d sessions open, then: %v", t, len(open), n, lastErr)
		}
		if len(open) > prevN {
			rss, err := stableRSS(ctx, t, settle)
			if err != nil {
				res.Err = err
				return res
			}
			res.Levels = append(res.Levels, idleLevel{
				Asked:      n,
				Sessions:   len(open),
				RSS:        rss,
				PerSession: float64(rss-res.Base) / float64(len(open)),
				Marginal:   float64(rss-prev) / float64(len(open)-prevN),
				Go:         readGoRuntime(ctx, t),
			})
			res.Files = proxyFileUse(t)
			prev, prevN = rss, len(open)
		}
		if res.Stop != nil {
			break
		}
	}
	held, lost := checkIdle(open)
	res.Held, res.Failed = held, res.Failed+lost
	open = nil // checkIdle logged them out
	return res
}

// proxyFileUse reads the file use of t's proxy processes; nil on error.
func proxyFileUse(t target) []fileUse {
	pids, err := t.Proxy.pids()
	if err != nil {
		log.Printf("%s: %v", t, err)
		return nil
	}
	var out []fileUse
	for _, pid := range pids {
		u, err := readFileUse(pid)
		if err != nil {
			log.Printf("%s: %v", t, err)
			continue
		}
		out = append(out, u)
	}
	return out
}

// whatStopped looks, right after sessions failed to open, at which of the
// processes involved (the proxy's, the driver holding the clients, the
// upstream) had no room left for a session's descriptors, and at what the
// proxy's error log says about open files.
func whatStopped(t target, upstream, asked, held int, lastErr error) *idleStop {
	st := &idleStop{Asked: asked, Held: held, Err: lastErr}
	// A session is two descriptors in a proxy; the sessions being opened
	// at once may have taken or left a few more.
	const slack = 2*idleWorkers + 8
	var all []namedFileUse
	who := t.Path
	if _, ok := t.Proxy.(*nginxProc); ok {
		who = "nginx worker"
	}
	for _, u := range proxyFileUse(t) {
		all = append(all, namedFileUse{who, u})
	}
	for _, p := range []struct {
		who string
		pid int
	}{{"the driver", os.Getpid()}, {"the upstream", upstream}} {
		if u, err := readFileUse(p.pid); err == nil {
			all = append(all, namedFileUse{p.who, u})
		}
	}
	for _, u := range all {
		if u.full(slack) {
			st.Full = append(st.Full, u)
		}
	}
	st.LogLine, st.LogLines = firstLogLine(t.Proxy.errorLog(), "too many open files", "worker_connections are not enough")
	return st
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
// returns those it opened, the number of failures and the last failure;
// it gives up early after many failures, or when every worker has failed
// twice in a row.
func openIdle(ctx context.Context, t target, n int) (sessions []idleSession, failed int, lastErr error) {
	var (
		mu     sync.Mutex
		inARow int
		stop   bool
		next   atomic.Int64
		wg     sync.WaitGroup
	)
	giveUp := max(10, n/100)
	for range idleWorkers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				s, err := openIdleSession(ctx, t)
				mu.Lock()
				if err != nil {
					failed++
					inARow++
					lastErr = err
				} else {
					inARow = 0
					sessions = append(sessions, s)
				}
				stop = stop || failed > giveUp || inARow >= 2*idleWorkers
				done := stop
				mu.Unlock()
				if done {
					return
				}
			}
		})
	}
	wg.Wait()
	if failed > 0 {
		lastErr = fmt.Errorf("%d sessions failed to open, the last: %w", failed, lastErr)
	}
	return sessions, failed, lastErr
}

// openIdleSession logs in, selects INBOX and starts IDLE, as a mail app
// waiting for new mail does.
func openIdleSession(ctx context.Context, t target) (idleSession, error) {
	ctx, cancel := context.WithTimeout(ctx, idleOpenTimeout)
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
