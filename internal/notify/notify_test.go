package notify

// The proxy composed with a Reach, end to end: a failed login through the
// proxy, the incident link in its ALERT and NO, the page over HTTPS
// (certificate verified) and in headless Chromium, expiry, the local
// status page seen from another address, the webhook, the desktop
// notification; and the notice mailbox in front of the Gmail imitation:
// the real server is tried first on every login; a cause typing cannot fix
// (Gmail's "Application-specific password required") logs the app into the
// read-only notice mailbox, whose one message explains it; every write is
// refused; the app password then reaches the real mailbox; a plain wrong
// password always gets a NO. With go-imap's imapclient and with curl.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/imitate"
	"github.com/imapwhy/imapwhy/internal/notify/incident"
	"github.com/imapwhy/imapwhy/internal/notify/notice"
	"github.com/imapwhy/imapwhy/internal/shield"
	"github.com/imapwhy/imapwhy/internal/testkit"
	"github.com/imapwhy/imapwhy/proxy"
)

// noMaxText bounds the runes of a NO's text (the proxy's frontMaxText).
const noMaxText = 200

// reachRig is a proxy with its own certificate (from a test CA), composed
// with a Reach as cmd/imapwhy does it.
type reachRig struct {
	srv    *proxy.Server
	reach  *Reach
	logs   *testLog
	clock  *testkit.Clock
	ca     *testkit.CA
	caFile string // the CA in PEM, for curl
}

// reachTestLimits keeps the failure delay short.
const reachTestLimits = "limits: {failure_delay_base: 10ms, failure_delay_max: 20ms}\n"

func startReachRig(t *testing.T, yaml string, popts proxy.Options, ropts Options) *reachRig {
	t.Helper()
	ca := testkit.NewCA(t, "imapwhy notify test CA")
	cert := ca.Leaf(t, testkit.LoopbackNames...).TLS()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(strings.NewReader("log: {level: debug}\n" + reachTestLimits + yaml))
	if err != nil {
		t.Fatal(err)
	}
	r := &reachRig{logs: &testLog{}, clock: testkit.NewClock(time.Now()), ca: ca, caFile: caFile}
	log := zerolog.New(r.logs).Level(zerolog.DebugLevel)
	tlsConf := &tls.Config{Certificates: []tls.Certificate{cert}}
	ropts.Logger, ropts.TLS = log, tlsConf
	if ropts.Now == nil {
		ropts.Now = r.clock.Now
	}
	reach, err := New(cfg, ropts)
	if err != nil {
		t.Fatal(err)
	}
	popts.Logger, popts.TLS, popts.OnRefusal = log, tlsConf, reach.OnRefusal
	s, err := proxy.New(cfg, popts)
	r.srv, r.reach = testkit.Start(t, s, err), reach
	if err := reach.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
		defer cancel()
		reach.Shutdown(ctx)
	})
	return r
}

// dial opens an implicit-TLS connection to listener i, verifying the
// proxy's certificate, and reads the greeting.
func (r *reachRig) dial(t *testing.T, i int) *testkit.Client {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", r.srv.Addrs()[i].String(), &tls.Config{RootCAs: r.ca.Pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	tc := testkit.NewClient(t, c)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	tc.Greeting()
	return tc
}

// https is a client that trusts only the test CA, dialling from local
// ("" for the default source address).
func (r *reachRig) https(t *testing.T, local string) *http.Client {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext:     d.DialContext,
			TLSClientConfig: &tls.Config{RootCAs: r.ca.Pool()},
		},
	}
}

func fetch(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

var linkRE = regexp.MustCompile(`https://\S+/why/[a-z2-7]{20}`)

// memUpstreamYAML is a listener config (implicit TLS, language lang) in
// front of an in-memory IMAP server with alice / alicepass.
func memUpstreamYAML(t *testing.T, lang string) string {
	up := testkit.MemServer(t, "none", true, testkit.NewPKI(t))
	return fmt.Sprintf("  - {address: '127.0.0.1:0', tls: implicit, language: %s, upstream: {address: %q, tls: none}}\n", lang, up)
}

const wrongPassword = "Wr0ng-S3cret!"

// TestIncidentLinkEndToEnd: the NO and ALERT carry the link; the page,
// fetched over HTTPS with the certificate verified, says what the NO said
// and nothing about the user; Chromium renders it on a phone-sized
// window; the page expires.
func TestIncidentLinkEndToEnd(t *testing.T) {
	r := startReachRig(t, "listeners:\n"+memUpstreamYAML(t, "en")+memUpstreamYAML(t, "ja")+
		"web: {address: '127.0.0.1:0', incident_ttl: 1h}\n", proxy.Options{}, Options{})
	web := r.reach.WebAddr()
	if web == nil {
		t.Fatal("no web server")
	}
	type seen struct{ alert, no, link string }
	login := func(i int, lang string) seen {
		tc := r.dial(t, i)
		if lang != "" {
			// Japanese on the wire only for a client that asked for it.
			tc.Send("l LANGUAGE " + lang + "\r\n")
			tc.Until("l ")
		}
		tc.Send("a1 LOGIN alice " + wrongPassword + "\r\n")
		tc.Line() // the X-IMAPWHY report
		alert, no := tc.Line(), tc.Line()
		a, ok1 := strings.CutPrefix(alert, "* OK [ALERT] ")
		n, ok2 := strings.CutPrefix(no, "a1 NO [AUTHENTICATIONFAILED] ")
		if !ok1 || !ok2 {
			t.Fatalf("answer %q / %q", alert, no)
		}
		if utf8.RuneCountInString(n) > noMaxText {
			t.Errorf("NO text has %d runes, more than %d", utf8.RuneCountInString(n), noMaxText)
		}
		link := linkRE.FindString(a)
		if link == "" || !strings.HasSuffix(a, " "+link) {
			t.Fatalf("ALERT %q does not end with the link", a)
		}
		if !strings.HasPrefix(link, "https://"+web.String()+"/why/") {
			t.Errorf("link %s, want it on the web address %s", link, web)
		}
		return seen{a, n, link}
	}

	en := login(0, "")
	// English credentials.rejected is too long for the link in the NO:
	// the NO keeps the whole message, the ALERT adds the link.
	msg := strings.TrimSuffix(en.alert, " "+en.link)
	if en.no != msg && en.no != en.alert {
		t.Errorf("NO %q is neither the message nor the ALERT", en.no)
	}
	ja := login(1, "JA")
	// A client that did not ask gets the ASCII message, with the link to
	// the page in the listener's language.
	if plain := login(1, ""); strings.ContainsFunc(plain.alert, func(r rune) bool { return r > 0x7f }) {
		t.Errorf("a client that did not ask for UTF-8 got %q", plain.alert)
	} else if _, body := fetch(t, r.https(t, ""), plain.link); !strings.Contains(body, `lang="ja"`) {
		t.Errorf("its link %s is not the Japanese page", plain.link)
	}
	if ja.no != ja.alert {
		t.Errorf("Japanese: NO %q differs from ALERT %q although the link fits", ja.no, ja.alert)
	}

	c := r.https(t, "")
	code, body := fetch(t, c, en.link)
	if code != 200 {
		t.Fatalf("GET %s: %d", en.link, code)
	}
	steps := incident.Steps("credentials.rejected", "en")
	for _, want := range []string{html.EscapeString(msg), html.EscapeString(steps[0]), "credentials.rejected"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, never := range []string{"alice", wrongPassword, "127.0.0.1"} {
		if strings.Contains(body, never) {
			t.Errorf("page shows %q", never)
		}
	}
	_, jaBody := fetch(t, c, ja.link)
	if !strings.Contains(jaBody, html.EscapeString(strings.TrimSuffix(ja.alert, " "+ja.link))) || !strings.Contains(jaBody, `lang="ja"`) {
		t.Error("the Japanese incident's page is not the Japanese message")
	}

	shot := screenshot(t, en.link, "incident-en.png")
	t.Logf("screenshot of %s: %s", en.link, shot)
	t.Logf("screenshot of the Japanese page: %s", screenshot(t, ja.link, "incident-ja.png"))

	ev := r.logs.Events("auth_failure")
	if len(ev) != 3 || ev[0]["incident_page"] != true || ev[0]["notice"] != false {
		t.Errorf("auth_failure events %v", ev)
	}
	if strings.Contains(r.logs.String(), wrongPassword) || strings.Contains(r.logs.String(), "/why/") {
		t.Error("the log holds the password or an incident link")
	}

	r.clock.Advance(time.Hour)
	if code, body := fetch(t, c, en.link); code != http.StatusNotFound || strings.Contains(body, html.EscapeString(msg)) {
		t.Errorf("after the TTL: %d", code)
	}
}

// screenshot opens url in headless Chromium on a 390x844 window (an
// iPhone's) and checks that the result is a PNG of that size that is not
// blank. The Go test has verified the certificate already; Chromium is
// told to ignore it, as it cannot be given the test CA.
func screenshot(t *testing.T, url, name string) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is needed for the incident page screenshot (scripts/test installs it): %v", err)
	}
	dir := filepath.Join(os.TempDir(), "imapwhy-screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	os.Remove(out)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--ignore-certificate-errors",
		"--user-data-dir="+t.TempDir(), "--screenshot="+out, "--window-size=390,844", url)
	cmd.WaitDelay = 5 * time.Second
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	b := img.Bounds()
	if b.Dx() != 390 || b.Dy() != 844 {
		t.Errorf("screenshot is %dx%d, want 390x844", b.Dx(), b.Dy())
	}
	colours := map[uint32]bool{}
	for y := b.Min.Y; y < b.Max.Y; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[r>>8<<16|g>>8<<8|bl>>8] = true
		}
	}
	if len(colours) < 8 {
		t.Errorf("screenshot has %d colours: blank or an error page", len(colours))
	}
	return out
}

// TestLocalStatusPageFromAnotherAddress: in local mode the status page
// lists a failure to the address it came from, not to another one.
func TestLocalStatusPageFromAnotherAddress(t *testing.T) {
	r := startReachRig(t, "listeners:\n"+memUpstreamYAML(t, "en")+"web: {address: '127.0.0.1:0'}\n", proxy.Options{}, Options{})
	tc := r.dial(t, 0)
	tc.Send("a1 LOGIN alice " + wrongPassword + "\r\n")
	link := linkRE.FindString(alertLine(tc))
	root := "https://" + r.reach.WebAddr().String() + "/"

	code, body := fetch(t, r.https(t, "127.0.0.1"), root)
	if code != 200 || !strings.Contains(body, "alice") || !strings.Contains(body, strings.TrimPrefix(link, "https://"+r.reach.WebAddr().String())) {
		t.Errorf("status page from 127.0.0.1: %d\n%s", code, body)
	}
	code, body = fetch(t, r.https(t, "127.0.0.2"), root)
	if code != 200 || strings.Contains(body, "alice") || strings.Contains(body, "/why/") || !strings.Contains(body, "No failed sign-ins") {
		t.Errorf("status page from 127.0.0.2: %d\n%s", code, body)
	}
	// The incident page itself is a capability URL: whoever has the link.
	if code, _ := fetch(t, r.https(t, "127.0.0.2"), link); code != 200 {
		t.Errorf("incident page from 127.0.0.2: %d", code)
	}
}

// TestWebhookEndToEnd: a failed login is posted with user, cause and
// link, and without the password.
func TestWebhookEndToEnd(t *testing.T) {
	got := make(chan []byte, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		got <- b
	}))
	defer hook.Close()
	r := startReachRig(t, "listeners:\n"+memUpstreamYAML(t, "en")+
		"web: {address: '127.0.0.1:0'}\nnotify: {webhook: {url: '"+hook.URL+"'}}\n", proxy.Options{}, Options{})
	tc := r.dial(t, 0)
	tc.Send("a1 LOGIN alice " + wrongPassword + "\r\n")
	link := linkRE.FindString(alertLine(tc))
	var body []byte
	body = testkit.Receive(t, got, 10*time.Second, "the webhook POST")
	var ev map[string]any
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev["user"] != "alice" || ev["cause"] != "credentials.rejected" || ev["code"] != "AUTHENTICATIONFAILED" ||
		ev["link"] != link || ev["client"] != "127.0.0.1" || ev["event"] != "auth_failure" {
		t.Errorf("webhook body %s", body)
	}
	if strings.Contains(string(body), wrongPassword) || strings.Contains(strings.ToLower(string(body)), "password\"") {
		t.Errorf("webhook body holds a password: %s", body)
	}
}

// TestDesktopNotificationEndToEnd: the platform command (a fake here) is
// run with the message and the link as one argument, never the password.
func TestDesktopNotificationEndToEnd(t *testing.T) {
	dir := t.TempDir()
	record := filepath.Join(dir, "args")
	script := filepath.Join(dir, "notify-send")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s\\n' \"$@\" > "+record+".tmp && mv "+record+".tmp "+record+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := startReachRig(t, "listeners:\n"+memUpstreamYAML(t, "en")+"web: {address: '127.0.0.1:0'}\nnotify: {desktop: true}\n",
		proxy.Options{}, Options{DesktopPath: script})
	tc := r.dial(t, 0)
	tc.Send("a1 LOGIN alice " + wrongPassword + "\r\n")
	link := linkRE.FindString(alertLine(tc))
	var args string
	testkit.WaitFor(t, func() bool {
		b, err := os.ReadFile(record)
		args = string(b)
		return err == nil
	})
	if !strings.Contains(args, "imapwhy: alice\n") || !strings.HasSuffix(strings.TrimSpace(args), link) || strings.Contains(args, wrongPassword) {
		t.Errorf("notify-send got %q", args)
	}
}

// TestWebStartErrors: the pages need the certificate, and a busy
// web.address fails Start with nothing left bound.
func TestWebStartErrors(t *testing.T) {
	cfg, err := config.Parse(strings.NewReader("listeners: [{address: '127.0.0.1:0', tls: none, upstream: {address: '127.0.0.1:1', tls: none}}]\nweb: {address: '127.0.0.1:0'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, Options{}); err == nil || !strings.Contains(err.Error(), "web.address") {
		t.Errorf("New without a certificate: %v", err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg.Web.Address = busy.Addr().String()
	cert := testkit.NewCA(t, "imapwhy notify test CA").Leaf(t, "127.0.0.1").TLS()
	r, err := New(cfg, Options{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(context.Background())
	if err := r.Start(); err == nil || !strings.Contains(err.Error(), "web.address") {
		t.Fatalf("Start with a busy web.address: %v", err)
	}
	if r.WebAddr() != nil {
		t.Error("something stayed bound after the failed Start")
	}
}

const (
	gmailUser        = "apppw@gmail.com"
	gmailAccountPW   = "my-google-password"  // Gmail: app password required
	gmailAppPassword = "abcd efgh ijkl mnop" // the fix
	gmailWrongUser   = "wrong@gmail.com"     // Gmail: invalid credentials
)

// startNoticeRig runs the Gmail imitation behind two listeners: the first
// with notice_mailbox, the second without. The shield remembers
// gmailAccountPW as the password that worked last for gmailUser (before
// Google wanted an app password): only such a password opens the notice
// mailbox.
func startNoticeRig(t *testing.T) *reachRig {
	t.Helper()
	return startNoticeRigWith(t, seededShield(t, gmailUser, gmailAccountPW))
}

// seededShield is a shield (memory store, cheap hashes) for which pw is
// the password that logged in last for user, from the test's own network
// (as the device did before its login started to fail).
func seededShield(t *testing.T, user, pw string) *shield.Shield {
	t.Helper()
	sh := shield.New(shield.NewMemoryStore(100), shield.NewSecret(), shield.Options{Params: shield.Params{Time: 1, Memory: 64, Threads: 1}})
	t.Cleanup(func() { sh.Close() })
	if user != "" {
		sh.BeginFrom(netip.MustParseAddr("127.0.0.1"), user, pw).Succeeded()
	}
	return sh
}

func startNoticeRigWith(t *testing.T, sh *shield.Shield) *reachRig {
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
`, up, up), proxy.Options{UpstreamRoots: gmail.CA().Pool(), Shield: sh}, Options{})
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
	for name, err := range testkit.TryWrites(c) {
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

	if n := len(r.logs.Events("notice_start")); n != 1 {
		t.Errorf("%d notice sessions, want 1", n)
	}
	var notices []bool
	for _, ev := range r.logs.Events("auth_failure") {
		notices = append(notices, ev["notice"] == true)
	}
	if want := []bool{true, false, false}; fmt.Sprint(notices) != fmt.Sprint(want) {
		t.Errorf("auth_failure notice flags %v, want %v", notices, want)
	}
	if n := len(r.logs.Events("auth_success")); n != 1 {
		t.Errorf("%d auth_success events, want 1 (the app password)", n)
	}
}

// TestNoticeMailboxNeedsCheckedPassword: the notice mailbox answers OK
// only for the password the real server accepted last. A password the
// server refused three times and the shield then holds, or any password
// while the server is down, gets a NO, never an OK; the last working
// password with the server down gets the notice, whose INBOX is READ-ONLY.
func TestNoticeMailboxNeedsCheckedPassword(t *testing.T) {
	// The device logged in before with another password: what the history
	// says is for it (credentials.repeated_failure), but not an OK.
	r := startNoticeRigWith(t, seededShield(t, gmailWrongUser, "an-older-password"))
	for i := range 4 { // the fourth is held: credentials.repeated_failure
		if _, err := r.client(t, 0, gmailWrongUser, "wrong-password"); err == nil {
			t.Fatalf("try %d of a wrong password: logged in", i+1)
		}
	}
	if ev := r.logs.Events("auth_failure"); len(ev) != 4 || ev[3]["held"] != true || ev[3]["notice"] != false {
		t.Errorf("the held try: %v", ev[len(ev)-1])
	}
	if _, err := r.client(t, 0, gmailUser, gmailAccountPW); err == nil {
		t.Error("a password the server never accepted opened the notice mailbox")
	}

	// The server is down (a closed loopback port).
	down := testkit.ClosedPort(t)
	const user, worked = "ann@example.com", "ann-Passw0rd"
	d := startReachRig(t, fmt.Sprintf(`listeners:
  - {address: '127.0.0.1:0', tls: implicit, notice_mailbox: true, upstream: {address: %q, tls: implicit}}
`, down), proxy.Options{Shield: seededShield(t, user, worked)}, Options{})
	for _, pw := range []string{"anything", "ANN-pASSW0RD", ""} {
		if _, err := d.client(t, 0, user, pw); err == nil {
			t.Errorf("server down: %q logged in", pw)
		}
	}
	if _, err := d.client(t, 0, "someone@example.com", "x"); err == nil {
		t.Error("server down: a user with no history logged in")
	}
	tc := d.dial(t, 0)
	tc.Send("a LOGIN " + user + " " + worked + "\r\nb SELECT INBOX\r\n")
	lines := tc.Until("b ")
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "a OK ") }) ||
		!strings.HasPrefix(lines[len(lines)-1], "b OK [READ-ONLY] ") {
		t.Errorf("the last working password, server down: %q", lines)
	}
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
	if n := len(r.logs.Events("notice_start")); n != 2+len(writes) {
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
	tc.Send("a LOGIN " + gmailUser + ` "` + gmailAccountPW + "\"\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
	if l := tc.Line(); !strings.HasPrefix(l, "* OK [X-IMAPWHY ") || !strings.Contains(l, "notice=1") {
		t.Errorf("first line %q, want the report of a notice login", l)
	}
	alert := tc.Line()
	if !strings.HasPrefix(alert, "* OK [ALERT] ") || !linkRE.MatchString(alert) {
		t.Errorf("first line %q, want the ALERT with the link", alert)
	}
	want := "a OK [CAPABILITY " + strings.Join(notice.Capabilities(), " ") + "] Logged in"
	if l := tc.Line(); l != want {
		t.Errorf("login answer %q, want %q", l, want)
	}
	lines := tc.Until("c ")
	all := strings.Join(lines, "\n")
	for _, w := range []string{"* 1 EXISTS", "b OK [READ-ONLY] ", "* BYE", "c OK "} {
		if !strings.Contains(all, w) {
			t.Errorf("no %q in\n%s", w, all)
		}
	}
	if strings.Contains(all, "PREAUTH") {
		t.Errorf("imapserver's greeting reached the client:\n%s", all)
	}
}

// testLog collects the JSON log lines for assertions.
type testLog struct{ testkit.Buffer }

// TestReload: a reload swaps the webhook and turns the desktop
// notifications on; the incident pages keep running with their links, and
// the keys only a restart applies are named in the log.
func TestReload(t *testing.T) {
	posts := func() (*httptest.Server, chan []byte) {
		got := make(chan []byte, 10)
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			b, _ := io.ReadAll(req.Body)
			got <- b
		}))
		t.Cleanup(hook.Close)
		return hook, got
	}
	hookA, gotA := posts()
	hookB, gotB := posts()
	dir := t.TempDir()
	record := filepath.Join(dir, "args")
	script := filepath.Join(dir, "notify-send")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s\\n' \"$@\" > "+record+".tmp && mv "+record+".tmp "+record+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	listeners := "listeners:\n" + memUpstreamYAML(t, "en")
	r := startReachRig(t, listeners+"web: {address: '127.0.0.1:0'}\nnotify: {webhook: {url: '"+hookA.URL+"'}}\n",
		proxy.Options{}, Options{DesktopPath: script})
	fail := func() string {
		t.Helper()
		tc := r.dial(t, 0)
		tc.Send("a1 LOGIN alice " + wrongPassword + "\r\n")
		return linkRE.FindString(alertLine(tc))
	}
	waitPost := func(got chan []byte) map[string]any {
		t.Helper()
		var ev map[string]any
		if err := json.Unmarshal(testkit.Receive(t, got, 10*time.Second, "the webhook POST"), &ev); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	before := fail()
	if ev := waitPost(gotA); ev["link"] != before {
		t.Errorf("first webhook %v", ev)
	}

	cfg, err := config.Parse(strings.NewReader(reachTestLimits + listeners +
		"web: {address: '127.0.0.2:0', incident_ttl: 2h}\nnotify: {desktop: true, webhook: {url: '" + hookB.URL + "'}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.reach.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	ev := r.logs.Events("reload_needs_restart")
	if len(ev) != 1 || fmt.Sprint(ev[0]["keys"]) != "[web.address web.incident_ttl]" {
		t.Errorf("reload_needs_restart events %v", ev)
	}
	after := fail()
	if ev := waitPost(gotB); ev["link"] != after || after == "" {
		t.Errorf("webhook after the reload %v, link %q", ev, after)
	}
	select {
	case b := <-gotA:
		t.Errorf("the old webhook still posts: %s", b)
	default:
	}
	testkit.WaitFor(t, func() bool {
		b, err := os.ReadFile(record)
		return err == nil && strings.HasSuffix(strings.TrimSpace(string(b)), after)
	})
	// The pages kept running where they were: both links work.
	c := r.https(t, "")
	for _, link := range []string{before, after} {
		if !strings.HasPrefix(link, "https://"+r.reach.WebAddr().String()+"/why/") {
			t.Errorf("link %s is not on the running web server %s", link, r.reach.WebAddr())
		}
		if code, _ := fetch(t, c, link); code != 200 {
			t.Errorf("GET %s after the reload: %d", link, code)
		}
	}
}

// alertLine reads the answer to a login up to its ALERT (after the
// X-IMAPWHY report) and returns it.
func alertLine(tc *testkit.Client) string {
	for {
		if l := tc.Line(); strings.HasPrefix(l, "* OK [ALERT] ") {
			return l
		}
	}
}
