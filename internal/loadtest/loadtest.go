// Package loadtest drives many concurrent IMAP sessions against a server
// (imapwhy in front of Dovecot, in its test) and checks that nothing is
// lost: Dovecot's imaptest is not packaged by Debian, so this is the
// project's own driver, on go-imap's imapclient.
//
// Each session logs in, creates and selects a mailbox of its own, and once
// every session is logged in they all work at once until the duration is
// over: APPEND a message (random size and content), FETCH it back by UID
// and compare it byte for byte, IDLE a while, again. At the end each
// session checks that its mailbox holds exactly the messages it appended,
// and logs out.
//
//	r, err := loadtest.Run(ctx, loadtest.Config{Addr: addr, TLS: tlsConfig,
//		Users: users, Sessions: 2000, Duration: time.Minute})
//	fmt.Println(r) // sessions held, messages and bytes, errors, lost
package loadtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Credentials are one user's.
type Credentials struct {
	User, Password string
}

// Config is one load run. Zero fields take the defaults in brackets.
type Config struct {
	Addr     string        // host:port of the server
	TLS      *tls.Config   // implicit TLS; nil: plaintext
	Users    []Credentials // sessions are spread over them, round robin
	Sessions int           // sessions held at once [10]
	Duration time.Duration // how long they work once all are logged in [10s]
	// Connecting is how many sessions connect and log in at once while
	// the run ramps up [50].
	Connecting int
	// MaxMessage bounds the size of an appended message [32 KiB].
	MaxMessage int
	// Idle bounds how long one IDLE lasts; each lasts a random time up to
	// it [2s].
	Idle time.Duration
	// Timeout bounds every exchange with the server [30s].
	Timeout time.Duration
}

func (c *Config) defaults() {
	set := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	setD := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	set(&c.Sessions, 10)
	set(&c.Connecting, 50)
	set(&c.MaxMessage, 32<<10)
	setD(&c.Duration, 10*time.Second)
	setD(&c.Idle, 2*time.Second)
	setD(&c.Timeout, 30*time.Second)
}

// Report is what a run did.
type Report struct {
	Sessions     int   // sessions that logged in
	Held         int   // most sessions logged in at once
	Appended     int64 // messages appended
	Fetched      int64 // messages fetched back and compared
	Idles        int64 // IDLE commands completed
	BytesWritten int64 // message bytes appended
	BytesRead    int64 // message bytes fetched back
	// Lost counts the messages appended and not found again, or found
	// different; BytesLost their bytes.
	Lost, BytesLost int64
	Errors          int // sessions that failed (protocol or connection errors)
	// AlreadyExists counts the CREATEs of a new mailbox that Dovecot
	// answered NO [ALREADYEXISTS] (see alreadyExists).
	AlreadyExists int
	FirstErrors   []error // up to 10 of them
	Elapsed       time.Duration
}

func (r Report) String() string {
	return fmt.Sprintf("%d sessions held at once (%d logged in), %d messages appended (%d KiB), %d fetched back and compared (%d KiB), %d IDLEs, %d lost (%d bytes), %d session errors (%d CREATEs answered ALREADYEXISTS), in %v",
		r.Held, r.Sessions, r.Appended, r.BytesWritten>>10, r.Fetched, r.BytesRead>>10, r.Idles, r.Lost, r.BytesLost, r.Errors, r.AlreadyExists, r.Elapsed.Round(time.Millisecond))
}

// run is the state of one Run.
type run struct {
	cfg    Config
	mu     sync.Mutex
	report Report
	live   atomic.Int64 // sessions logged in now
	start  chan struct{}
	stop   chan struct{}
}

// Run connects cfg.Sessions sessions, lets them work for cfg.Duration once
// all are logged in, checks their mailboxes and logs them out. The error
// is about the run itself (ctx ended, bad config); what went wrong in
// sessions is in the Report.
func Run(ctx context.Context, cfg Config) (Report, error) {
	cfg.defaults()
	if cfg.Addr == "" || len(cfg.Users) == 0 {
		return Report{}, errors.New("loadtest: Addr and Users are needed")
	}
	r := &run{cfg: cfg, start: make(chan struct{}), stop: make(chan struct{})}
	began := time.Now()
	var ready, done sync.WaitGroup
	sem := make(chan struct{}, cfg.Connecting)
	for i := range cfg.Sessions {
		ready.Add(1)
		done.Go(func() { r.session(i, sem, &ready) })
	}
	ready.Wait()
	close(r.start)
	select {
	case <-time.After(cfg.Duration):
	case <-ctx.Done():
	}
	close(r.stop)
	done.Wait()
	r.report.Elapsed = time.Since(began)
	return r.report, ctx.Err()
}

// session is one client from login to logout. ready is marked once it is
// logged in (or failed to).
func (r *run) session(i int, sem chan struct{}, ready *sync.WaitGroup) {
	s, err := r.connect(i, sem)
	ready.Done()
	if err != nil {
		r.failed(i, err)
		return
	}
	defer s.c.Close()
	r.loggedIn()
	defer r.live.Add(-1)
	<-r.start
	if err := s.work(r); err != nil {
		r.failed(i, err)
		return
	}
	if err := s.finish(r); err != nil {
		r.failed(i, err)
	}
}

func (r *run) loggedIn() {
	n := r.live.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.report.Sessions++
	r.report.Held = max(r.report.Held, int(n))
}

func (r *run) failed(i int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.report.Errors++
	if len(r.report.FirstErrors) < 10 {
		r.report.FirstErrors = append(r.report.FirstErrors, fmt.Errorf("session %d: %w", i, err))
	}
}

func (r *run) add(f func(*Report)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.report)
}

// client is one session's connection and what it appended.
type client struct {
	c       *imapclient.Client
	conn    net.Conn
	timeout time.Duration
	mailbox string
	rng     *rand.Rand
	sent    map[imap.UID][]byte // what was appended, by UID
	maxMsg  int
	idle    time.Duration
}

// connect dials, logs in, creates and selects the session's mailbox,
// holding a slot of sem meanwhile.
func (r *run) connect(i int, sem chan struct{}) (*client, error) {
	sem <- struct{}{}
	defer func() { <-sem }()
	cfg := r.cfg
	conn, err := net.DialTimeout("tcp", cfg.Addr, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	if cfg.TLS != nil {
		conn = tls.Client(conn, cfg.TLS)
	}
	s := &client{
		conn:    conn,
		timeout: cfg.Timeout,
		mailbox: fmt.Sprintf("load-%d", i),
		rng:     rand.New(rand.NewPCG(uint64(i), 7)),
		sent:    map[imap.UID][]byte{},
		maxMsg:  cfg.MaxMessage,
		idle:    cfg.Idle,
	}
	s.c = imapclient.New(conn, nil)
	user := cfg.Users[i%len(cfg.Users)]
	err = s.do(func() error {
		if err := s.c.WaitGreeting(); err != nil {
			return fmt.Errorf("greeting: %w", err)
		}
		if err := s.c.Login(user.User, user.Password).Wait(); err != nil {
			return fmt.Errorf("LOGIN: %w", err)
		}
		if err := s.c.Create(s.mailbox, nil).Wait(); alreadyExists(err) {
			r.add(func(rp *Report) { rp.AlreadyExists++ })
		} else if err != nil {
			return fmt.Errorf("CREATE: %w", err)
		}
		_, err := s.c.Select(s.mailbox, nil).Wait()
		return err
	})
	if err != nil {
		s.c.Close()
		return nil, err
	}
	return s, nil
}

// alreadyExists reports a NO [ALREADYEXISTS]. Dovecot answers it now and
// then to the CREATE of a new name when an imap process serving several
// sessions of one user creates two mailboxes at once (the mailbox exists
// all the same). The mailbox is checked at the end to hold exactly what the
// session appended, so a mailbox that really existed before fails the run.
func alreadyExists(err error) bool {
	var imapErr *imap.Error
	return errors.As(err, &imapErr) && imapErr.Code == imap.ResponseCodeAlreadyExists
}

// do runs f with the connection's deadline set to the timeout.
func (s *client) do(f func() error) error {
	s.conn.SetDeadline(time.Now().Add(s.timeout))
	return f()
}

// work appends, fetches and idles until the run stops.
func (s *client) work(r *run) error {
	for {
		select {
		case <-r.stop:
			return nil
		default:
		}
		if err := s.appendFetch(r); err != nil {
			return err
		}
		if err := s.idleOnce(r); err != nil {
			return err
		}
	}
}

// appendFetch appends one message, fetches it back and compares.
func (s *client) appendFetch(r *run) error {
	msg := s.message()
	var uid imap.UID
	err := s.do(func() error {
		cmd := s.c.Append(s.mailbox, int64(len(msg)), nil)
		if _, err := cmd.Write(msg); err != nil {
			return err
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		data, err := cmd.Wait()
		if err != nil {
			return err
		}
		if data.UID == 0 {
			return errors.New("no APPENDUID (UIDPLUS)")
		}
		uid = data.UID
		return nil
	})
	if err != nil {
		return fmt.Errorf("APPEND: %w", err)
	}
	s.sent[uid] = msg
	r.add(func(rp *Report) { rp.Appended++; rp.BytesWritten += int64(len(msg)) })
	got, err := s.fetch(uid)
	if err != nil {
		return err
	}
	r.add(func(rp *Report) {
		rp.Fetched++
		rp.BytesRead += int64(len(got))
		if !bytes.Equal(got, msg) {
			rp.Lost++
			rp.BytesLost += int64(len(msg))
		}
	})
	return nil
}

// fetch returns the message with uid.
func (s *client) fetch(uid imap.UID) ([]byte, error) {
	body := &imap.FetchItemBodySection{Peek: true}
	var msgs []*imapclient.FetchMessageBuffer
	err := s.do(func() error {
		var err error
		msgs, err = s.c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{body}}).Collect()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("FETCH: %w", err)
	}
	if len(msgs) != 1 {
		return nil, fmt.Errorf("FETCH UID %d: %d messages", uid, len(msgs))
	}
	return msgs[0].FindBodySection(body), nil
}

// idleOnce idles for a random time up to the configured one, or until the
// run stops.
func (s *client) idleOnce(r *run) error {
	wait := time.Duration(s.rng.Int64N(int64(s.idle))) + time.Millisecond
	err := s.do(func() error {
		idle, err := s.c.Idle()
		if err != nil {
			return err
		}
		select {
		case <-time.After(wait):
		case <-r.stop:
		}
		if err := idle.Close(); err != nil {
			return err
		}
		return idle.Wait()
	})
	if err != nil {
		return fmt.Errorf("IDLE: %w", err)
	}
	r.add(func(rp *Report) { rp.Idles++ })
	return nil
}

// finish checks that the mailbox holds exactly the messages appended, and
// logs out.
func (s *client) finish(r *run) error {
	var uids []imap.UID
	err := s.do(func() error {
		data, err := s.c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
		if err != nil {
			return err
		}
		uids = data.AllUIDs()
		return nil
	})
	if err != nil {
		return fmt.Errorf("UID SEARCH: %w", err)
	}
	found := map[imap.UID]bool{}
	for _, uid := range uids {
		found[uid] = true
	}
	for uid, msg := range s.sent {
		if !found[uid] {
			r.add(func(rp *Report) { rp.Lost++; rp.BytesLost += int64(len(msg)) })
		}
	}
	if len(uids) != len(s.sent) {
		return fmt.Errorf("the mailbox holds %d messages, %d were appended", len(uids), len(s.sent))
	}
	if err := s.do(func() error { return s.c.Logout().Wait() }); err != nil {
		return fmt.Errorf("LOGOUT: %w", err)
	}
	return nil
}

// message is a new message of random size and content, with CRLF line
// ends (what a server stores is what it serves back).
func (s *client) message() []byte {
	size := 200 + s.rng.IntN(s.maxMsg)
	var b bytes.Buffer
	b.Grow(size + 100)
	fmt.Fprintf(&b, "From: load@example.test\r\nSubject: load %d\r\nMessage-ID: <%d.%d@load.test>\r\n\r\n", s.rng.Uint64(), s.rng.Uint64(), len(s.sent))
	line := make([]byte, 76)
	for b.Len() < size {
		for i := range line {
			line[i] = byte('!' + s.rng.IntN(94))
		}
		b.Write(line)
		b.WriteString("\r\n")
	}
	return b.Bytes()
}
