package dovecottest_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/imapwhy/imapwhy/internal/dovecottest"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// connTimeout bounds everything one test connection does.
const connTimeout = 20 * time.Second

// Greetings as Dovecot 2.3.19 sends them (see the package doc).
const (
	greetingPlain    = "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN AUTH=LOGIN] Dovecot (Debian) ready."
	greetingTLS      = "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN AUTH=LOGIN] Dovecot (Debian) ready."
	greetingInsecure = "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS LOGINDISABLED] Dovecot (Debian) ready."
)

func TestGreetings(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	tests := []struct {
		name string
		addr string
		tls  bool
		want string
	}{
		{"IMAP on 127.0.0.1 is secured", srv.IMAP, false, greetingPlain},
		{"IMAPS", srv.IMAPS, true, greetingTLS},
		{"127.0.0.2 is not secured", srv.Insecure, false, greetingInsecure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := dialRaw(t, tt.addr, tt.tls, srv)
			if got := r.Line(); got != tt.want {
				t.Errorf("greeting\n got %q\nwant %q", got, tt.want)
			}
		})
	}
	if tail := srv.LogTail(20); !strings.Contains(tail, "starting up for imap") {
		t.Errorf("LogTail lacks Dovecot's start line:\n%s", tail)
	}
}

// TestLogins checks the default users' answers over implicit TLS, with
// LOGIN and AUTHENTICATE PLAIN.
func TestLogins(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	tests := []struct {
		user, pass string
		plain      bool              // AUTHENTICATE PLAIN instead of LOGIN
		code       imap.ResponseCode // "" for success
		text       string            // the NO text (a prefix for UNAVAILABLE)
	}{
		{user: "alice", pass: "alicepass"},
		{user: "alice", pass: "alicepass", plain: true},
		{user: "bob", pass: "bobpass"},
		{user: "carol@example.test", pass: "carolpass"},
		{user: "utf8", pass: dovecottest.UTF8Password},
		{user: "utf8", pass: dovecottest.UTF8Password, plain: true},
		{user: "alice", pass: "wrong", code: imap.ResponseCodeAuthenticationFailed, text: "Authentication failed."},
		{user: "alice", pass: "wrong", plain: true, code: imap.ResponseCodeAuthenticationFailed, text: "Authentication failed."},
		{user: "alice", pass: "alicepass ", code: imap.ResponseCodeAuthenticationFailed, text: "Authentication failed."},
		{user: "carol", pass: "carolpass", code: imap.ResponseCodeAuthenticationFailed, text: "Authentication failed."},
		{user: "utf8", pass: "passwort", code: imap.ResponseCodeAuthenticationFailed, text: "Authentication failed."},
		{user: "nosuchuser", pass: "x", code: imap.ResponseCodeAuthenticationFailed, text: "Authentication failed."},
		{user: "nologin", pass: "nologinpass", code: imap.ResponseCodeContactAdmin, text: "Login disabled for this user"},
		{user: "disabled", pass: "disabledpass", code: imap.ResponseCodeContactAdmin, text: dovecottest.DisabledReason},
		{user: "disabled", pass: "wrong", code: imap.ResponseCodeAuthenticationFailed, text: "Authentication failed."},
		{user: "disabled2", pass: "x", code: imap.ResponseCodeContactAdmin, text: dovecottest.Disabled2Reason},
		{user: "tempfail1", pass: "x", code: imap.ResponseCodeUnavailable, text: "Temporary authentication failure. ["},
		{user: "tempfail2", pass: "x", plain: true, code: imap.ResponseCodeUnavailable, text: "Temporary authentication failure. ["},
		{user: "expired", pass: "x", code: imap.ResponseCodeExpired, text: "Password expired"},
	}
	for _, tt := range tests {
		mech := "LOGIN"
		if tt.plain {
			mech = "PLAIN"
		}
		t.Run(fmt.Sprintf("%s/%s/%q", mech, tt.user, tt.pass), func(t *testing.T) {
			t.Parallel() // failures take ~0.5 s each
			c := dialTLS(t, srv.IMAPS, srv, nil)
			var err error
			if tt.plain {
				err = c.Authenticate(sasl.NewPlainClient("", tt.user, tt.pass))
			} else {
				err = c.Login(tt.user, tt.pass).Wait()
			}
			checkStatus(t, err, tt.code, tt.text)
		})
	}
}

// checkStatus compares a command's result with a NO code and text prefix.
func checkStatus(t *testing.T, err error, code imap.ResponseCode, text string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("got %v, want success", err)
		}
		return
	}
	var ierr *imap.Error
	if !errors.As(err, &ierr) {
		t.Fatalf("got %v, want NO [%s] %s", err, code, text)
	}
	if ierr.Type != imap.StatusResponseTypeNo || ierr.Code != code || !strings.HasPrefix(ierr.Text, text) {
		t.Fatalf("got %s [%s] %q, want NO [%s] %q", ierr.Type, ierr.Code, ierr.Text, code, text)
	}
}

// TestInsecureAddress checks that 127.0.0.2 refuses plaintext login and
// allows it after STARTTLS.
func TestInsecureAddress(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	r := dialRaw(t, srv.Insecure, false, srv)
	r.Line() // greeting, checked in TestGreetings
	got := r.Command("a1 LOGIN alice alicepass")
	want := []string{
		"* BAD [ALERT] Plaintext authentication not allowed without SSL/TLS, but your client did it anyway. If anyone was listening, the password was exposed.",
		"a1 NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("LOGIN before STARTTLS\n got %q\nwant %q", got, want)
	}

	c := dialStartTLS(t, srv.Insecure, srv)
	if err := c.Login("alice", "alicepass").Wait(); err != nil {
		t.Fatalf("LOGIN after STARTTLS: %v", err)
	}
}

func TestPostLoginCapabilities(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	c := dialTLS(t, srv.IMAPS, srv, nil)
	if err := c.Login("alice", "alicepass").Wait(); err != nil {
		t.Fatal(err)
	}
	caps := c.Caps()
	for _, want := range []imap.Cap{imap.CapIdle, imap.CapUIDPlus, imap.CapCondStore, "COMPRESS=DEFLATE"} {
		if !caps.Has(want) {
			t.Errorf("capability %s missing after login (imap_zlib plugin for COMPRESS)", want)
		}
	}
}

// TestUserChanges checks that Dovecot sees passwd-file changes without a
// restart, even a same-length password change within the same second.
func TestUserChanges(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	login := func(user, pass string) error {
		return dialTLS(t, srv.IMAPS, srv, nil).Login(user, pass).Wait()
	}
	if err := login("bob", "bobpass"); err != nil {
		t.Fatalf("before the change: %v", err)
	}
	srv.SetPassword("bob", "BOBPASS") // same length: only the mtime differs
	checkStatus(t, login("bob", "BOBPASS"), "", "")
	checkStatus(t, login("bob", "bobpass"), imap.ResponseCodeAuthenticationFailed, "Authentication failed.")

	// nologin answers CONTACTADMIN only for the right password, so this
	// also shows that spaces in a password survive the passwd-file.
	srv.AddUser("dave", " pass word ", "nologin=y", "reason=Moved_to_another_server")
	checkStatus(t, login("dave", " pass word "), imap.ResponseCodeContactAdmin, "Moved_to_another_server")
}

// TestUserValidation checks that what cannot be a passwd-file line is
// refused, reported on the test and returned, without the password.
func TestUserValidation(t *testing.T) {
	rec := &recordingT{TB: t}
	srv := dovecottest.Start(rec, dovecottest.Options{})
	for _, tt := range []struct {
		name, user, pass string
		extra            []string
	}{
		{"colon in password", "eve", "sec:ret", nil},
		{"newline in password", "eve", "sec\nret", nil},
		{"space in name", "e ve", "secret", nil},
		{"comment name", "#eve", "secret", nil},
		{"slash in name", "../eve", "secret", nil},
		{"space in extra field", "eve", "secret", []string{"reason=two words"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec.errs = nil
			err := srv.AddUser(tt.user, tt.pass, tt.extra...)
			if err == nil {
				t.Fatal("accepted")
			}
			if len(rec.errs) != 1 || rec.errs[0] != err.Error() {
				t.Errorf("reported %q, returned %q", rec.errs, err)
			}
			if strings.Contains(err.Error(), tt.pass) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
	t.Run("SetPassword of an unknown user", func(t *testing.T) {
		rec.errs = nil
		if err := srv.SetPassword("nosuchuser", "secret"); err == nil || len(rec.errs) != 1 {
			t.Errorf("returned %v, reported %q", err, rec.errs)
		}
	})
}

// recordingT records Errorf instead of failing, to test failure reports.
type recordingT struct {
	testing.TB
	errs []string
}

func (r *recordingT) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestDeliverWhileIdle checks that a delivered message reaches a session in
// IDLE and is served byte for byte.
func TestDeliverWhileIdle(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	handler, exists := testkit.ExistsHandler()
	c := dialTLS(t, srv.IMAPS, srv, handler)
	idle := testkit.IdleInbox(t, c, "alice", "alicepass")
	msg := []byte("From: bob@example.test\r\nTo: alice@example.test\r\nSubject: hello\r\n\r\nHi Alice,\r\nüñíçødé body.\r\n")
	srv.Deliver("alice", msg)
	if n := testkit.Receive(t, exists, 10*time.Second, "EXISTS after the delivery"); n != 1 {
		t.Errorf("EXISTS %d, want 1", n)
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	body := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{body}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || !bytes.Equal(msgs[0].FindBodySection(body), msg) {
		t.Errorf("fetched message differs from the delivered one")
	}
}

func TestMaxUserIPConnections(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{MaxUserIPConnections: 1})
	first := dialTLS(t, srv.IMAPS, srv, nil)
	if err := first.Login("alice", "alicepass").Wait(); err != nil {
		t.Fatal(err)
	}
	err := dialTLS(t, srv.IMAPS, srv, nil).Login("alice", "alicepass").Wait()
	checkStatus(t, err, imap.ResponseCodeLimit,
		"Maximum number of connections from user+IP exceeded (mail_max_userip_connections=1)")
}

func TestTrustedNetworks(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{TrustedNetworks: []string{"127.0.0.0/8"}})
	r := dialRaw(t, srv.Insecure, false, srv)
	if got, want := r.Line(), greetingPlain; got != want {
		t.Errorf("greeting on 127.0.0.2 from a trusted network\n got %q\nwant %q", got, want)
	}
}

// TestParallelStarts checks that two servers started at once get their own
// directories and ports and both serve.
func TestParallelStarts(t *testing.T) {
	var (
		mu      sync.Mutex
		servers []*dovecottest.Server
	)
	t.Run("group", func(t *testing.T) {
		for i := range 2 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				srv := dovecottest.Start(t, dovecottest.Options{})
				if err := dialTLS(t, srv.IMAPS, srv, nil).Login("alice", "alicepass").Wait(); err != nil {
					t.Error(err)
				}
				mu.Lock()
				servers = append(servers, srv)
				mu.Unlock()
			})
		}
	})
	if len(servers) != 2 {
		t.Fatalf("%d servers started, want 2", len(servers))
	}
	a, b := servers[0], servers[1]
	if a.Dir == b.Dir || a.IMAP == b.IMAP || a.IMAPS == b.IMAPS {
		t.Errorf("servers share a directory or port: %s %s %s, %s %s %s", a.Dir, a.IMAP, a.IMAPS, b.Dir, b.IMAP, b.IMAPS)
	}
}

func TestStop(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{})
	srv.Stop()
	srv.Stop() // idempotent
	_, err := net.DialTimeout("tcp", srv.IMAPS, 5*time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial after Stop: %v, want connection refused", err)
	}
}

// dialTLS connects an imapclient over implicit TLS, trusting srv's CA, with
// every operation bounded by connTimeout.
func dialTLS(t *testing.T, addr string, srv *dovecottest.Server, h *imapclient.UnilateralDataHandler) *imapclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), connTimeout)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{RootCAs: srv.CAPool}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return newClient(t, conn, h)
}

// dialStartTLS connects an imapclient and upgrades it with STARTTLS.
func dialStartTLS(t *testing.T, addr string, srv *dovecottest.Server) *imapclient.Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, connTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.SetDeadline(time.Now().Add(connTimeout)); err != nil {
		t.Fatal(err)
	}
	host, _, _ := net.SplitHostPort(addr)
	c, err := imapclient.NewStartTLS(conn, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: srv.CAPool, ServerName: host}})
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newClient(t *testing.T, conn net.Conn, h *imapclient.UnilateralDataHandler) *imapclient.Client {
	t.Helper()
	if err := conn.SetDeadline(time.Now().Add(connTimeout)); err != nil {
		t.Fatal(err)
	}
	c := imapclient.New(conn, &imapclient.Options{UnilateralDataHandler: h})
	t.Cleanup(func() { c.Close() })
	return c
}

func dialRaw(t *testing.T, addr string, useTLS bool, srv *dovecottest.Server) *testkit.Client {
	t.Helper()
	var (
		c   net.Conn
		err error
	)
	d := &net.Dialer{Timeout: connTimeout}
	if useTLS {
		c, err = tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: srv.CAPool})
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(connTimeout)); err != nil {
		t.Fatal(err)
	}
	return &testkit.Client{T: t, Conn: c, Reader: bufio.NewReader(c)}
}

// TestHAProxy: the haproxy listener takes the client's address from the
// PROXY header, and logs it as the remote IP.
func TestHAProxy(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.Options{HAProxy: true})
	c, err := net.DialTimeout("tcp", srv.HAProxyIMAPS, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	_, port, _ := net.SplitHostPort(srv.HAProxyIMAPS)
	fmt.Fprintf(c, "PROXY TCP4 192.0.2.55 127.0.0.1 40000 %s\r\n", port)
	tc := tls.Client(c, &tls.Config{RootCAs: srv.CAPool, ServerName: "127.0.0.1"})
	r := &testkit.Client{T: t, Conn: tc, Reader: bufio.NewReader(tc)}
	if g := r.Line(); !strings.HasPrefix(g, "* OK") {
		t.Fatalf("greeting %q", g)
	}
	if got := r.Command("a1 LOGIN alice alicepass"); !strings.HasPrefix(got[len(got)-1], "a1 OK") {
		t.Fatalf("login: %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(srv.LogTail(50), "rip=192.0.2.55") {
		if time.Now().After(deadline) {
			t.Fatalf("Dovecot's log does not name the header's client:\n%s", srv.LogTail(20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
