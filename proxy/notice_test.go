package proxy

// Issue 8, the notice mailbox end to end, in front of the Gmail imitation:
// the real server is tried first on every login; a cause typing cannot fix
// (Gmail's "Application-specific password required") logs the app into the
// read-only notice mailbox, whose one message explains it; every write is
// refused; the app password then reaches the real mailbox; a plain wrong
// password always gets a NO. With go-imap's imapclient and with curl.

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/imapwhy/imapwhy/internal/imitate"
	"github.com/imapwhy/imapwhy/internal/notify/notice"
)

const (
	gmailUser        = "apppw@gmail.com"
	gmailAccountPW   = "my-google-password"  // Gmail: app password required
	gmailAppPassword = "abcd efgh ijkl mnop" // the fix
	gmailWrongUser   = "wrong@gmail.com"     // Gmail: invalid credentials
)

// startNoticeRig runs the Gmail imitation behind two listeners: the first
// with notice_mailbox, the second without.
func startNoticeRig(t *testing.T) *reachRig {
	t.Helper()
	p, ok := imitate.Lookup("gmail")
	if !ok {
		t.Fatal("no gmail imitation")
	}
	gmail, err := imitate.Start(p, imitate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gmail.Close() })
	up := fmt.Sprintf("upstream: {address: %q, tls: implicit, server_name: imap.gmail.com}", gmail.Addr())
	return startReachRig(t, fmt.Sprintf(`listeners:
  - {address: '127.0.0.1:0', tls: implicit, notice_mailbox: true, %s}
  - {address: '127.0.0.1:0', tls: implicit, %s}
web: {address: '127.0.0.1:0'}
`, up, up), Options{UpstreamRoots: gmail.CA().Pool()})
}

// client logs in with go-imap's imapclient over implicit TLS, verifying
// the proxy's certificate.
func (r *reachRig) client(t *testing.T, i int, user, password string) (*imapclient.Client, error) {
	t.Helper()
	c, err := imapclient.DialTLS(r.srv.Addrs()[i].String(), &imapclient.Options{
		TLSConfig: &tls.Config{RootCAs: r.ca.Pool(), ServerName: "127.0.0.1"},
		Dialer:    &net.Dialer{Timeout: 5 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, c.Login(user, password).Wait()
}

func TestNoticeMailboxImapclient(t *testing.T) {
	r := startNoticeRig(t)

	// Gmail refuses the account password: the app is logged in to the
	// notice mailbox, which holds the explanation.
	c, err := r.client(t, 0, gmailUser, gmailAccountPW)
	if err != nil {
		t.Fatalf("login to the notice mailbox: %v", err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages != 1 {
		t.Fatalf("SELECT: %+v %v", sel, err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{
		Envelope: true, BodySection: []*imap.FetchItemBodySection{{}},
	}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH: %v %v", msgs, err)
	}
	raw := msgs[0].FindBodySection(&imap.FetchItemBodySection{})
	for _, want := range []string{"From: imapwhy <imapwhy@imapwhy.invalid>", "To: <" + gmailUser + ">", "provider.app_password_required", "app password", "Content-Type: text/plain; charset=utf-8"} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("notice lacks %q:\n%s", want, raw)
		}
	}
	if bytes.Contains(raw, []byte(gmailAccountPW)) {
		t.Error("the notice quotes the password")
	}
	for name, err := range noticeWrites(c) {
		var ierr *imap.Error
		if !errors.As(err, &ierr) || ierr.Type != imap.StatusResponseTypeNo || ierr.Code != imap.ResponseCodeCannot {
			t.Errorf("%s in the notice mailbox: %v, want NO [CANNOT]", name, err)
		}
	}
	if err := c.Logout().Wait(); err != nil {
		t.Errorf("LOGOUT: %v", err)
	}

	// The fix: with the app password the real server, tried first, takes
	// the login, and the real INBOX is there.
	c, err = r.client(t, 0, gmailUser, gmailAppPassword)
	if err != nil {
		t.Fatalf("login with the app password: %v", err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err = c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true}).Collect()
	if err != nil || len(msgs) != 1 || msgs[0].Envelope.Subject != imitate.WelcomeSubject {
		t.Fatalf("real INBOX after the fix: %v %v", msgs, err)
	}

	// A plain wrong password never reaches the notice mailbox.
	if _, err := r.client(t, 0, gmailWrongUser, "wrong-password"); err == nil {
		t.Error("a wrong password was logged in")
	}
	// Nor does anything on a listener without notice_mailbox.
	if _, err := r.client(t, 1, gmailUser, gmailAccountPW); err == nil {
		t.Error("a listener without notice_mailbox logged the app in")
	}

	if n := len(r.logs.events("notice_start")); n != 1 {
		t.Errorf("%d notice sessions, want 1", n)
	}
	var notices []bool
	for _, ev := range r.logs.events("auth_failure") {
		notices = append(notices, ev["notice"] == true)
	}
	if want := []bool{true, false, false}; fmt.Sprint(notices) != fmt.Sprint(want) {
		t.Errorf("auth_failure notice flags %v, want %v", notices, want)
	}
	if n := len(r.logs.events("auth_success")); n != 1 {
		t.Errorf("%d auth_success events, want 1 (the app password)", n)
	}
}

// noticeWrites tries every command that could change a mailbox.
func noticeWrites(c *imapclient.Client) map[string]error {
	out := map[string]error{}
	msg := "Subject: x\r\n\r\nx\r\n"
	ap := c.Append("INBOX", int64(len(msg)), nil)
	ap.Write([]byte(msg))
	ap.Close()
	_, out["APPEND"] = ap.Wait()
	_, out["STORE"] = c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect()
	_, out["COPY"] = c.Copy(imap.SeqSetNum(1), "INBOX").Wait()
	_, out["MOVE"] = c.Move(imap.SeqSetNum(1), "Trash").Wait()
	_, out["EXPUNGE"] = c.Expunge().Collect()
	out["CREATE"] = c.Create("Sent", nil).Wait()
	out["DELETE"] = c.Delete("INBOX").Wait()
	out["RENAME"] = c.Rename("INBOX", "Old", nil).Wait()
	return out
}

// TestNoticeMailboxCurl: curl reads the notice, cannot write to it, and a
// wrong password gets curl's "login denied".
func TestNoticeMailboxCurl(t *testing.T) {
	r := startNoticeRig(t)
	base := "imaps://127.0.0.1:" + portOf(t, r.srv.Addrs()[0])
	run := func(userpw string, args ...string) (string, string, error) {
		t.Helper()
		all := append([]string{"--silent", "--show-error", "--max-time", "20", "--cacert", r.caFile, "--user", userpw}, args...)
		cmd := exec.Command("curl", all...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	out, stderr, err := run(gmailUser+":"+gmailAccountPW, base+"/INBOX;UID=1")
	if err != nil {
		t.Fatalf("curl fetch: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, "provider.app_password_required") || !strings.Contains(out, "Subject: ") {
		t.Errorf("curl printed %q", out)
	}
	out, _, err = run(gmailUser+":"+gmailAccountPW, base+"/")
	if err != nil || !strings.Contains(out, "INBOX") {
		t.Errorf("curl list: %q %v", out, err)
	}

	upload := filepath.Join(t.TempDir(), "msg.eml")
	os.WriteFile(upload, []byte("Subject: x\r\n\r\nx\r\n"), 0o600)
	writes := map[string][]string{
		"APPEND": {"--upload-file", upload, base + "/INBOX"},
		"STORE":  {"--request", `STORE 1 +FLAGS (\Deleted)`, base + "/INBOX"},
		"COPY":   {"--request", "COPY 1 Archive", base + "/INBOX"},
		"CREATE": {"--request", "CREATE Archive", base + "/"},
		"DELETE": {"--request", "DELETE INBOX", base + "/"},
	}
	for name, args := range writes {
		_, stderr, err := run(gmailUser+":"+gmailAccountPW, append([]string{"--verbose"}, args...)...)
		if err == nil {
			t.Errorf("curl %s succeeded in the notice mailbox", name)
		}
		if !strings.Contains(stderr, " NO [CANNOT] ") {
			t.Errorf("curl %s: %v, and no NO [CANNOT] in its transcript:\n%s", name, err, stderr)
		}
	}

	_, _, err = run(gmailWrongUser+":wrong-password", base+"/INBOX;UID=1")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 67 { // CURLE_LOGIN_DENIED
		t.Errorf("curl with a wrong password: %v, want exit status 67", err)
	}
	if n := len(r.logs.events("notice_start")); n != 2+len(writes) {
		t.Errorf("%d notice sessions, want %d", n, 2+len(writes))
	}
}

func portOf(t *testing.T, a net.Addr) string {
	_, p, err := net.SplitHostPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestNoticeMailboxPipelined: commands sent right behind the LOGIN reach
// the notice mailbox, and imapserver's own greeting never reaches the app
// (it has already read the tagged OK).
func TestNoticeMailboxPipelined(t *testing.T) {
	r := startNoticeRig(t)
	tc := r.dial(t, 0)
	tc.send("a LOGIN " + gmailUser + ` "` + gmailAccountPW + "\"\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
	alert := tc.line()
	if !strings.HasPrefix(alert, "* OK [ALERT] ") || !linkRE.MatchString(alert) {
		t.Errorf("first line %q, want the ALERT with the link", alert)
	}
	want := "a OK [CAPABILITY " + strings.Join(notice.Capabilities(), " ") + "] Logged in"
	if l := tc.line(); l != want {
		t.Errorf("login answer %q, want %q", l, want)
	}
	lines := tc.until("c ")
	all := strings.Join(lines, "\n")
	for _, w := range []string{"* 1 EXISTS", "b OK ", "* BYE", "c OK "} {
		if !strings.Contains(all, w) {
			t.Errorf("no %q in\n%s", w, all)
		}
	}
	if strings.Contains(all, "PREAUTH") {
		t.Errorf("imapserver's greeting reached the client:\n%s", all)
	}
}
