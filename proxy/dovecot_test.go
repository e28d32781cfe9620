package proxy_test

// End-to-end tests: mail clients (go-imap's imapclient, raw
// IMAP over tls.Conn, curl, Python's imaplib) through the proxy to a real
// Dovecot (internal/dovecottest), over every combination of implicit TLS
// and STARTTLS on the client side and on the upstream side.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"

	"github.com/imapwhy/imapwhy/internal/testkit"
)

// TestDovecotSessions: LOGIN or AUTHENTICATE PLAIN, SELECT, APPEND of a
// 5 MiB message and FETCH of it byte for byte, LOGOUT.
func TestDovecotSessions(t *testing.T) {
	e := startE2E(t)
	forEachRoute(t, func(t *testing.T, r route, user, pass string) {
		c := e.client(t, r, nil)
		// Both mechanisms on both client sides and both upstream sides.
		if r.client == r.upstream {
			if err := c.Login(user, pass).Wait(); err != nil {
				t.Fatalf("LOGIN: %v", err)
			}
		} else if err := c.Authenticate(sasl.NewPlainClient("", user, pass)); err != nil {
			t.Fatalf("AUTHENTICATE PLAIN: %v", err)
		}
		caps := c.Caps()
		if !caps.Has(imap.CapIdle) || !caps.Has(imap.CapUIDPlus) {
			t.Errorf("post-login capabilities lack Dovecot's IDLE/UIDPLUS: %v", caps)
		}
		for _, pre := range []imap.Cap{imap.CapStartTLS, imap.CapLoginDisabled, "AUTH=PLAIN"} {
			if caps.Has(pre) {
				t.Errorf("post-login capabilities still have %s", pre)
			}
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatalf("SELECT: %v", err)
		}
		msg := largeMessage(5 << 20)
		uid := appendMessage(t, c, msg)
		if got := fetchMessage(t, c, uid); !bytes.Equal(got, msg) {
			t.Errorf("FETCH returned %d bytes that differ from the %d appended", len(got), len(msg))
		}
		if err := c.Logout().Wait(); err != nil {
			t.Errorf("LOGOUT: %v", err)
		}
	})
}

// TestDovecotIdle: a session in IDLE through the proxy hears of a message
// delivered locally and of one appended by a second proxied session.
func TestDovecotIdle(t *testing.T) {
	e := startE2E(t)
	forEachRoute(t, func(t *testing.T, r route, user, pass string) {
		handler, exists := testkit.ExistsHandler()
		c := e.client(t, r, handler)
		idle := testkit.IdleInbox(t, c, user, pass)
		e.dc.Deliver(user, []byte("Subject: delivered\r\n\r\nfirst\r\n"))
		waitExists(t, exists, 1)

		other := e.client(t, r, nil)
		if err := other.Login(user, pass).Wait(); err != nil {
			t.Fatal(err)
		}
		appendMessage(t, other, []byte("Subject: appended\r\n\r\nsecond\r\n"))
		waitExists(t, exists, 2)

		if err := idle.Close(); err != nil {
			t.Fatal(err)
		}
		if err := idle.Wait(); err != nil {
			t.Fatalf("IDLE: %v", err)
		}
	})
}

func waitExists(t *testing.T, exists <-chan uint32, want uint32) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case n := <-exists:
			if n == want {
				return
			}
		case <-timeout:
			t.Fatalf("no EXISTS %d within 10 s", want)
		}
	}
}

// TestDovecotCompress: COMPRESS=DEFLATE (RFC 4978), which Dovecot offers
// with its imap_zlib plugin, works through the proxy, which does not parse
// the session after login.
func TestDovecotCompress(t *testing.T) {
	e := startE2E(t)
	forEachRoute(t, func(t *testing.T, r route, user, pass string) {
		if user == "utf8" { // LOGIN below uses quoted strings: ASCII only
			user, pass = "alice", "alicepass"
		}
		rc := e.raw(t, r)
		login := rc.Command("a LOGIN " + quote(user) + " " + quote(pass))
		ok := login[len(login)-1]
		if !strings.HasPrefix(ok, "a OK [CAPABILITY ") {
			t.Fatalf("LOGIN: %q", login)
		}
		if !strings.Contains(ok, " COMPRESS=DEFLATE") {
			t.Fatalf("Dovecot offers COMPRESS=DEFLATE (dovecottest enables imap_zlib), the proxy's login reply does not: %q", ok)
		}
		if got := rc.Command("c COMPRESS DEFLATE"); !strings.HasPrefix(got[len(got)-1], "c OK") {
			t.Fatalf("COMPRESS: %q", got)
		}
		rc.deflate()
		if got := rc.Command("d SELECT INBOX"); !strings.HasPrefix(got[len(got)-1], "d OK [READ-WRITE]") {
			t.Fatalf("SELECT over DEFLATE: %q", got)
		}
		// LOGOUT: the session ends. Dovecot (2.3) itself now and then
		// closes a compressed connection at logout without the end of the
		// stream (BYE and OK lost): seen directly, without the proxy, in 2
		// of 400 logouts on a loaded machine. So a client can rely on the
		// connection closing, and on what arrives being the answer's start,
		// not on the whole answer.
		rc.Send("e LOGOUT\r\n")
		var got []string
		for {
			l, err := rc.Reader.ReadString('\n')
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("LOGOUT over DEFLATE: %q, then %v; want the connection closed", got, err)
				}
				break
			}
			got = append(got, strings.TrimSuffix(l, "\r\n"))
		}
		want := []string{"* BYE", "e OK"}
		if len(got) > len(want) {
			t.Fatalf("LOGOUT over DEFLATE: %q", got)
		}
		for i, l := range got {
			if !strings.HasPrefix(l, want[i]) {
				t.Fatalf("LOGOUT over DEFLATE: %q, want %q or the start of it", got, want)
			}
		}
	})
}

// TestDovecotPipelinedLogin: LOGIN and SELECT in one write; the SELECT
// buffered behind the LOGIN must reach Dovecot after the login.
func TestDovecotPipelinedLogin(t *testing.T) {
	e := startE2E(t)
	forEachRoute(t, func(t *testing.T, r route, _, _ string) {
		rc := e.raw(t, r)
		rc.Send("a LOGIN alice alicepass\r\nb SELECT INBOX\r\n")
		lines := rc.Until("b ")
		if !strings.HasPrefix(lines[0], "a OK [CAPABILITY ") {
			t.Errorf("first line %q, want the LOGIN's OK", lines[0])
		}
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, "b OK [READ-WRITE]") {
			t.Errorf("SELECT answered %q", last)
		}
		if !containsPrefix(lines, "* OK [UIDVALIDITY ") {
			t.Errorf("no SELECT data in %q", lines)
		}
	})
}

// TestDovecotWrongPassword: the client gets an ALERT and a NO with the
// upstream's code and imapwhy's text, may try again on the same connection,
// and the failure is logged without the password.
func TestDovecotWrongPassword(t *testing.T) {
	e := startE2E(t)
	forEachRoute(t, func(t *testing.T, r route, _, _ string) {
		rc := e.raw(t, r)
		lines := rc.Command("a LOGIN alice " + wrongPassword)
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "* OK [X-IMAPWHY cause=") {
			t.Fatalf("got %q, want the report, an ALERT and a NO", lines)
		}
		lines = lines[1:]
		alert, ok := strings.CutPrefix(lines[0], "* OK [ALERT] ")
		if !ok || alert == "" {
			t.Errorf("first line %q, want * OK [ALERT] <text>", lines[0])
		}
		no, ok := strings.CutPrefix(lines[1], "a NO [AUTHENTICATIONFAILED] ")
		if !ok {
			t.Errorf("second line %q, want a NO [AUTHENTICATIONFAILED] <text>", lines[1])
		}
		if no != alert {
			t.Errorf("NO text %q differs from the ALERT %q", no, alert)
		}
		if no == "Authentication failed." {
			t.Errorf("the client got Dovecot's own text, not imapwhy's")
		}
		if got := rc.Command("b LOGIN alice alicepass"); !strings.HasPrefix(got[len(got)-1], "b OK ") {
			t.Errorf("second try on the same connection: %q", got)
		}
	})
	ev := e.logs.events("auth_failure")
	if len(ev) != len(routes) {
		t.Fatalf("%d auth_failure events, want %d:\n%s", len(ev), len(routes), e.logs)
	}
	for _, l := range ev {
		if !strings.Contains(l, `"code":"AUTHENTICATIONFAILED"`) || !strings.Contains(l, `"user":"alice"`) {
			t.Errorf("auth_failure event lacks code or user: %s", l)
		}
	}
}

// TestDovecotCurl: curl as a second real client, over implicit TLS and
// STARTTLS: mailbox list, message list, message bytes, and the text of a
// refused login in its verbose output.
func TestDovecotCurl(t *testing.T) {
	e := startE2E(t)
	msg := []byte("From: bob@example.test\r\nSubject: for curl\r\n\r\nHello through imapwhy.\r\n")
	e.dc.Deliver("alice", msg)
	imaps := "imaps://" + e.addrs[routes[0]]
	starttls := "imap://" + e.addrs[routes[3]]
	tests := []struct {
		name  string
		args  []string
		want  string
		exact bool // stdout is want, not just contains it
	}{
		{"mailboxes", []string{imaps + "/"}, `* LIST (\HasNoChildren) "." INBOX`, false},
		{"messages", []string{imaps + "/INBOX?ALL"}, "* SEARCH 1\r\n", false},
		{"message", []string{imaps + "/INBOX;UID=1"}, string(msg), true},
		{"STARTTLS message", []string{"--ssl-reqd", starttls + "/INBOX;UID=1"}, string(msg), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := e.curl(t, "alice:alicepass", tt.args...)
			if err != nil {
				t.Fatalf("curl: %v\n%s", err, stderr)
			}
			ok := strings.Contains(stdout, tt.want)
			if tt.exact {
				ok = stdout == tt.want
			}
			if !ok {
				t.Errorf("curl printed %q, want %q", stdout, tt.want)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		_, stderr, err := e.curl(t, "alice:"+wrongPassword, "-v", imaps+"/INBOX")
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 67 { // CURLE_LOGIN_DENIED
			t.Fatalf("curl: %v, want exit status 67 (login denied)", err)
		}
		alert := lineAfter(stderr, "< * OK [ALERT] ")
		no := lineAfter(stderr, " NO [AUTHENTICATIONFAILED] ")
		if alert == "" || no != alert {
			t.Errorf("curl -v shows ALERT %q and NO text %q, want the same imapwhy text:\n%s", alert, no, stderr)
		}
	})
}

// TestDovecotPythonImaplib: Python's imaplib as a third client (its own
// IMAP parser and TLS stack): login and select, and a refused login.
func TestDovecotPythonImaplib(t *testing.T) {
	e := startE2E(t)
	e.dc.Deliver("alice", []byte("Subject: for python\r\n\r\nHello.\r\n"))
	for _, r := range []route{routes[0], routes[3]} {
		t.Run(r.String(), func(t *testing.T) {
			t.Parallel()
			if got := e.python(t, r, "alicepass"); got != "OK 1" {
				t.Errorf("imaplib printed %q, want %q", got, "OK 1")
			}
			got := e.python(t, r, wrongPassword)
			if !strings.HasPrefix(got, "NO [AUTHENTICATIONFAILED] ") || got == "NO [AUTHENTICATIONFAILED] Authentication failed." {
				t.Errorf("imaplib printed %q, want imapwhy's NO [AUTHENTICATIONFAILED] text", got)
			}
		})
	}
}

// pythonClient logs in with imaplib and prints "OK <messages in INBOX>", or
// "NO <the server's text>" when the login is refused. The password comes
// in the environment, not on the command line.
const pythonClient = `
import imaplib, os, ssl
ctx = ssl.create_default_context(cafile=os.environ["IMAP_CA"])
host, port = os.environ["IMAP_HOST"], int(os.environ["IMAP_PORT"])
if os.environ["IMAP_TLS"] == "implicit":
    m = imaplib.IMAP4_SSL(host, port, ssl_context=ctx, timeout=20)
else:
    m = imaplib.IMAP4(host, port, timeout=20)
    m.starttls(ssl_context=ctx)
try:
    m.login(os.environ["IMAP_USER"], os.environ["IMAP_PASS"])
except imaplib.IMAP4.error as e:
    print("NO", e.args[0].decode() if isinstance(e.args[0], bytes) else e.args[0])
    raise SystemExit(0)
typ, data = m.select("INBOX")
print(typ, data[0].decode())
m.logout()
`

func (e *e2e) python(t *testing.T, r route, pass string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(e.addrs[r])
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "python3", "-c", pythonClient)
	cmd.Env = append(os.Environ(), "IMAP_CA="+e.caFile, "IMAP_HOST="+host, "IMAP_PORT="+port,
		"IMAP_TLS="+r.client, "IMAP_USER=alice", "IMAP_PASS="+pass)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3 imaplib: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// curl runs curl trusting the proxy's CA, with userpass as -u.
func (e *e2e) curl(t *testing.T, userpass string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	all := append([]string{"--silent", "--show-error", "--max-time", "20", "--cacert", e.caFile, "-u", userpass}, args...)
	cmd := exec.CommandContext(ctx, "curl", all...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// lineAfter returns the rest of the first line of s containing marker.
func lineAfter(s, marker string) string {
	for _, l := range strings.Split(s, "\n") {
		if _, rest, ok := strings.Cut(l, marker); ok {
			return strings.TrimRight(rest, "\r")
		}
	}
	return ""
}

func containsPrefix(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}
