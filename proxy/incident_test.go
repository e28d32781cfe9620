package proxy

// Issue 8 end to end: a failed login through the proxy, the incident link
// in its ALERT and NO, the page over HTTPS (certificate verified) and in
// headless Chromium, expiry, the local status page seen from another
// address, the webhook and the desktop notification. The notice mailbox is
// in notice_test.go.

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"html"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/imitate"
	"github.com/imapwhy/imapwhy/internal/notify/incident"
	"github.com/imapwhy/imapwhy/internal/upstream/upstreamtest"
)

// reachClock is the incident store's settable clock.
type reachClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *reachClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.IsZero() {
		c.t = time.Now()
	}
	return c.t
}

func (c *reachClock) advance(d time.Duration) {
	c.now()
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// reachRig is a proxy with its own certificate (from a test CA) and the
// issue-8 features the configuration asks for.
type reachRig struct {
	srv    *Server
	logs   *serverLog
	clock  *reachClock
	ca     *imitate.CA
	caFile string // the CA in PEM, for curl
}

// reachTestLimits keeps the failure delay short.
const reachTestLimits = "limits: {failure_delay_base: 10ms, failure_delay_max: 20ms}\n"

func startReachRig(t *testing.T, yaml string, opts Options) *reachRig {
	t.Helper()
	ca, err := imitate.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("localhost", "127.0.0.1", "::1")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(strings.NewReader("log: {level: debug}\n" + reachTestLimits + yaml))
	if err != nil {
		t.Fatal(err)
	}
	r := &reachRig{logs: &serverLog{}, clock: &reachClock{}, ca: ca, caFile: caFile}
	opts.Logger = testLogger(r.logs)
	opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	if opts.Reach.Now == nil {
		opts.Reach.Now = r.clock.now
	}
	s, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	r.srv = s
	return r
}

// dial opens an implicit-TLS connection to listener i, verifying the
// proxy's certificate, and reads the greeting.
func (r *reachRig) dial(t *testing.T, i int) *testClient {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", r.srv.Addrs()[i].String(), &tls.Config{RootCAs: r.ca.Pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { c.Close() })
	tc := &testClient{t: t, c: c, br: bufio.NewReader(c)}
	if g := tc.line(); !strings.HasPrefix(g, "* OK ") {
		t.Fatalf("greeting %q", g)
	}
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
	up := upstreamtest.MemServer(t, "none", true, upstreamtest.NewPKI(t))
	return fmt.Sprintf("  - {address: '127.0.0.1:0', tls: implicit, language: %s, upstream: {address: %q, tls: none}}\n", lang, up)
}

const wrongPassword = "Wr0ng-S3cret!"

// TestIncidentLinkEndToEnd: the NO and ALERT carry the link; the page,
// fetched over HTTPS with the certificate verified, says what the NO said
// and nothing about the user; Chromium renders it on a phone-sized
// window; the page expires.
func TestIncidentLinkEndToEnd(t *testing.T) {
	r := startReachRig(t, "listeners:\n"+memUpstreamYAML(t, "en")+memUpstreamYAML(t, "ja")+
		"web: {address: '127.0.0.1:0', incident_ttl: 1h}\n", Options{})
	web := r.srv.WebAddr()
	if web == nil {
		t.Fatal("no web server")
	}
	type seen struct{ alert, no, link string }
	login := func(i int) seen {
		tc := r.dial(t, i)
		tc.send("a1 LOGIN alice " + wrongPassword + "\r\n")
		alert, no := tc.line(), tc.line()
		a, ok1 := strings.CutPrefix(alert, "* OK [ALERT] ")
		n, ok2 := strings.CutPrefix(no, "a1 NO [AUTHENTICATIONFAILED] ")
		if !ok1 || !ok2 {
			t.Fatalf("answer %q / %q", alert, no)
		}
		if utf8.RuneCountInString(n) > frontMaxText {
			t.Errorf("NO text has %d runes, more than %d", utf8.RuneCountInString(n), frontMaxText)
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

	en := login(0)
	// English credentials.rejected is too long for the link in the NO:
	// the NO keeps the whole message, the ALERT adds the link.
	msg := strings.TrimSuffix(en.alert, " "+en.link)
	if en.no != msg && en.no != en.alert {
		t.Errorf("NO %q is neither the message nor the ALERT", en.no)
	}
	ja := login(1)
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

	ev := r.logs.events("auth_failure")
	if len(ev) != 2 || ev[0]["incident_page"] != true || ev[0]["notice"] != false {
		t.Errorf("auth_failure events %v", ev)
	}
	if strings.Contains(r.logs.String(), wrongPassword) || strings.Contains(r.logs.String(), "/why/") {
		t.Error("the log holds the password or an incident link")
	}

	r.clock.advance(time.Hour)
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
	r := startReachRig(t, "listeners:\n"+memUpstreamYAML(t, "en")+"web: {address: '127.0.0.1:0'}\n", Options{})
	tc := r.dial(t, 0)
	tc.send("a1 LOGIN alice " + wrongPassword + "\r\n")
	link := linkRE.FindString(tc.line())
	root := "https://" + r.srv.WebAddr().String() + "/"

	code, body := fetch(t, r.https(t, "127.0.0.1"), root)
	if code != 200 || !strings.Contains(body, "alice") || !strings.Contains(body, strings.TrimPrefix(link, "https://"+r.srv.WebAddr().String())) {
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
		"web: {address: '127.0.0.1:0'}\nnotify: {webhook: {url: '"+hook.URL+"'}}\n", Options{})
	tc := r.dial(t, 0)
	tc.send("a1 LOGIN alice " + wrongPassword + "\r\n")
	link := linkRE.FindString(tc.line())
	var body []byte
	select {
	case body = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook POST")
	}
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
		Options{Reach: ReachOptions{DesktopPath: script}})
	tc := r.dial(t, 0)
	tc.send("a1 LOGIN alice " + wrongPassword + "\r\n")
	link := linkRE.FindString(tc.line())
	var args string
	waitFor(t, func() bool {
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
	ca, err := imitate.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Options{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil || !strings.Contains(err.Error(), "web.address") {
		t.Fatalf("Start with a busy web.address: %v", err)
	}
	if len(s.Addrs()) != 0 || s.WebAddr() != nil {
		t.Error("something stayed bound after the failed Start")
	}
}
