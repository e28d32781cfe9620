package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/dovecottest"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// lanServe is `imapwhy serve --lan` in front of Dovecot, with what it
// printed.
type lanServe struct {
	p                    *serveProcess
	imapPort, webPort    string
	caFile, setupURL     string
	caPool               *x509.CertPool
	caFP, leafFP, qrText string
	dir                  string
}

// startLANServe runs serve --lan with 127.0.0.2 marked as outside the
// home network (allow_clients: 127.0.0.1 only): on this machine every
// address is loopback.
func startLANServe(t *testing.T) *lanServe {
	t.Helper()
	dc := dovecottest.Start(t, dovecottest.Options{})
	dir := t.TempDir()
	caPath := dc.CAFile(t)
	cfgFile := filepath.Join(dir, "imapwhy.yaml")
	cfg := fmt.Sprintf(`state_dir: %s
log: {format: json, level: info}
limits: {failure_delay_base: 1ms, failure_delay_max: 1ms}
allow_clients: [127.0.0.1/32]
listeners:
  - address: 127.0.0.1:0
    tls: implicit
    language: ja
    upstream: {address: %q, tls: implicit, ca_file: %s}
web: {address: "127.0.0.1:0"}
`, filepath.Join(dir, "state"), dc.IMAPS, caPath)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := buildImapwhy(t)
	cmd := exec.Command(bin, "serve", "--lan", "--config", cfgFile, "--host", "127.0.0.1", "--setup-http", "127.0.0.1:0")
	p := startProcess(t, cmd)
	s := &lanServe{p: p, dir: dir}
	s.imapPort = p.expect(`listening on \S+:(\d+) \(implicit\)`)[1]
	s.webPort = p.expect(`incident and status pages on https://\S+:(\d+)/`)[1]
	s.caFile = p.expect(`local certificate authority (\S+)`)[1]
	s.caFP = p.expect(`CA fingerprint \(shown when a phone installs the profile or the CA\): (SHA256 [0-9A-F:]+)`)[1]
	s.leafFP = p.expect(`server certificate fingerprint \(shown by a mail app's "add exception".*\): (SHA256 [0-9A-F:]+)`)[1]
	p.expect(`set-up page on your home network: https://127\.0\.0\.1:` + s.webPort + `/setup`)
	p.expect(`scan with the phone's camera`)
	var qr strings.Builder
	for {
		l := p.next()
		if m := regexpURL.FindStringSubmatch(l); m != nil {
			s.setupURL = m[1]
			break
		}
		qr.WriteString(l + "\n")
	}
	s.qrText = qr.String()
	s.caPool = caPool(t, s.caFile)
	return s
}

// https is a client that trusts imapwhy's CA, from 127.0.0.1.
func (s *lanServe) https() *http.Client {
	return &http.Client{Timeout: testkit.Timeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.caPool}}}
}

func httpGet(t *testing.T, c *http.Client, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestServeLAN: serve --lan prints a QR code that zbarimg decodes to the
// set-up link; through it the profile points Mail at this imapwhy's
// listener with the state directory's CA and a Web Clip that opens the
// status page; a client outside the home network is refused; a client
// refusing the certificate is logged and listed on the status page.
func TestServeLAN(t *testing.T) {
	s := startLANServe(t)
	if got := testkit.DecodeTerminalQR(t, s.qrText); got != s.setupURL {
		t.Errorf("the QR code reads %q, the printed link is %q", got, s.setupURL)
	}
	if !strings.HasPrefix(s.setupURL, "http://127.0.0.1:") || !strings.HasSuffix(s.setupURL, "/setup") {
		t.Errorf("set-up link %q", s.setupURL)
	}
	plain := &http.Client{Timeout: testkit.Timeout}
	resp, page := httpGet(t, plain, s.setupURL+"?email=carol@example.test", "Accept-Language", "en")
	page = strings.ReplaceAll(page, "<wbr>", "") // the fingerprint's wrap points
	if resp.StatusCode != 200 || !strings.Contains(page, s.caFP) {
		t.Fatalf("set-up page over the link: %d; fingerprint %s shown: %v", resp.StatusCode, s.caFP, strings.Contains(page, s.caFP))
	}

	// The profile, as plistlib reads it.
	profileURL := strings.TrimSuffix(s.setupURL, "/setup") + "/setup/profile.mobileconfig?email=carol@example.test"
	resp, body := httpGet(t, plain, profileURL)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-apple-aspen-config" {
		t.Fatalf("profile: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	const py = `import json, plistlib, sys
p = plistlib.loads(sys.stdin.buffer.read())
out = {}
for pl in p["PayloadContent"]:
    t = pl["PayloadType"]
    if t == "com.apple.security.root": out["ca"] = pl["PayloadContent"].hex()
    if t == "com.apple.mail.managed": out["host"], out["port"], out["ssl"], out["user"] = pl["IncomingMailServerHostName"], pl["IncomingMailServerPortNumber"], pl["IncomingMailServerUseSSL"], pl["IncomingMailServerUsername"]
    if t == "com.apple.webClip.managed": out["clip"] = pl["URL"]
print(json.dumps(out))`
	cmd := exec.Command("python3", "-c", py)
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("plistlib: %v\n%s", err, out)
	}
	var prof struct {
		CA, Host, User, Clip string
		Port                 int
		SSL                  bool
	}
	json.Unmarshal(out, &prof)
	caPEM, _ := os.ReadFile(s.caFile)
	blk, _ := pem.Decode(caPEM)
	if prof.CA != fmt.Sprintf("%x", blk.Bytes) {
		t.Error("the profile's CA is not the state directory's")
	}
	if prof.Host != "127.0.0.1" || fmt.Sprint(prof.Port) != s.imapPort || !prof.SSL || prof.User != "carol@example.test" {
		t.Errorf("profile's Mail account: %+v, want 127.0.0.1:%s with SSL", prof, s.imapPort)
	}
	wantClip := "https://127.0.0.1:" + s.webPort + "/"
	if prof.Clip != wantClip {
		t.Errorf("Web Clip URL %q, want %q", prof.Clip, wantClip)
	}
	if resp, status := httpGet(t, s.https(), prof.Clip, "Accept-Language", "en"); resp.StatusCode != 200 || !strings.Contains(status, "<h1>") {
		t.Errorf("the Web Clip's URL: %d", resp.StatusCode)
	}

	// 127.0.0.2 stands for an address outside the home network.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: testkit.Timeout}
	c, err := d.Dial("tcp", "127.0.0.1:"+s.imapPort)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(testkit.Timeout))
	if n, err := c.Read(make([]byte, 64)); n != 0 || err == nil {
		t.Errorf("a client outside the home network got %d bytes (%v), want the connection closed", n, err)
	}
	c.Close()
	outside := &http.Client{Timeout: testkit.Timeout, Transport: &http.Transport{DialContext: d.DialContext}}
	if resp, _ := httpGet(t, outside, s.setupURL); resp.StatusCode != 403 {
		t.Errorf("set-up link from outside: %d, want 403", resp.StatusCode)
	}

	// A device without the CA refuses the certificate.
	if tc, err := tls.Dial("tcp", "127.0.0.1:"+s.imapPort, &tls.Config{ServerName: "127.0.0.1"}); err == nil {
		tc.Close()
		t.Fatal("TLS verified without imapwhy's CA")
	}
	deadline := time.Now().Add(testkit.Timeout)
	for !strings.Contains(s.p.stderr.String(), `"event":"tls_untrusted"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no tls_untrusted log line:\n%s", s.p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, status := httpGet(t, s.https(), "https://127.0.0.1:"+s.webPort+"/", "Accept-Language", "en"); !strings.Contains(status, "The device at 127.0.0.1 does not trust imapwhy yet: open /setup on it.") {
		t.Errorf("status page lacks the untrusted device:\n%s", status)
	}
}

// TestSetupLiveView: while /setup is open, a failed and then a good
// login by Python's imaplib show up in its event stream, in order, the
// failure with its diagnosis; the page then shows both.
func TestSetupLiveView(t *testing.T) {
	s := startLANServe(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://127.0.0.1:"+s.webPort+"/setup/events?email=carol@example.test", nil)
	resp, err := s.https().Transport.(*http.Transport).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := make(chan map[string]any, 10)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ev map[string]any
				json.Unmarshal([]byte(d), &ev)
				events <- ev
			}
		}
		close(events)
	}()

	const py = `import imaplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
for password in ("wrong-password", "carolpass"):
    m = imaplib.IMAP4_SSL("127.0.0.1", int(sys.argv[2]), ssl_context=ctx)
    try:
        m.login("carol@example.test", password)
        print("OK")
        m.logout()
    except imaplib.IMAP4.error as e:
        print("NO", e)
`
	out, err := exec.Command("python3", "-c", py, s.caFile, s.imapPort).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "NO") || !strings.Contains(string(out), "\nOK") {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
	want := []string{"refused", "login"}
	for _, kind := range want {
		select {
		case ev := <-events:
			if ev["kind"] != kind || ev["user"] != "carol@example.test" {
				t.Errorf("event %v, want %s", ev, kind)
			}
			if kind == "refused" && (ev["message"] == "" || ev["message"] == nil || ev["steps"] == nil) {
				t.Errorf("the failure comes without its diagnosis: %v", ev)
			}
		case <-time.After(testkit.Timeout):
			t.Fatalf("no %s event", kind)
		}
	}
	// The page as a browser renders it (over the set-up link: the browser
	// does not trust the CA yet).
	dom := chromium(t, "--dump-dom", s.setupURL+"?email=carol@example.test&lang=en")
	ok, bad := strings.Index(dom, "Your device logged in as carol@example.test."), strings.Index(dom, "The login as carol@example.test failed:")
	if ok < 0 || bad < 0 || ok > bad {
		t.Errorf("the page does not show the good login above the failed one:\n%s", dom)
	}
}

// chromium runs headless Chromium at phone width with one more flag and
// the URL, and returns its standard output.
func chromium(t *testing.T, flag, url string) string {
	t.Helper()
	return testkit.Chromium(t, "390,844", flag, url)
}

// chromiumSized is chromium with a window size.
func chromiumSized(t *testing.T, size, flag, url string) string {
	t.Helper()
	return testkit.Chromium(t, size, flag, url)
}

// TestSetupScreenshots renders the set-up page and the status page as a
// phone shows them (390 px wide), in Japanese and English, with headless
// Chromium: the text is there (the DOM after scripts ran) and a Japanese
// font is installed so that the screenshots show it. With
// IMAPWHY_SCREENSHOTS=DIR the PNGs are kept there (docs/ holds them).
func TestSetupScreenshots(t *testing.T) {
	if out, err := exec.Command("fc-list", ":lang=ja").Output(); err != nil || len(bytes.TrimSpace(out)) == 0 {
		t.Fatalf("no Japanese font (fonts-noto-cjk): Japanese would render as boxes (%v)", err)
	}
	s := startLANServe(t)
	const py = `import imaplib, ssl, sys
m = imaplib.IMAP4_SSL("127.0.0.1", int(sys.argv[2]), ssl_context=ssl.create_default_context(cafile=sys.argv[1]))
try:
    m.login("carol@example.test", "wrong-password")
except imaplib.IMAP4.error as e:
    print("NO", e)`
	if out, err := exec.Command("python3", "-c", py, s.caFile, s.imapPort).CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "NO") {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
	dir := os.Getenv("IMAPWHY_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	status := "https://127.0.0.1:" + s.webPort + "/"
	for _, c := range []struct {
		name, url string
		want      []string
	}{
		{"setup-en", s.setupURL + "?email=carol@example.test&lang=en", []string{"Set up your mail app with imapwhy", "Download the profile", s.caFP, "The login as carol@example.test failed:", `id="apple"`}},
		{"setup-ja", s.setupURL + "?email=carol@example.test&lang=ja", []string{"imapwhy でメールアプリを設定", "プロファイルをダウンロード", s.caFP, "carol@example.test のログインに失敗しました"}},
		{"status-en", status + "?lang=en", []string{"carol@example.test", "<time datetime="}},
		{"status-ja", status + "?lang=ja", []string{"carol@example.test", `lang="ja"`}},
	} {
		dom := strings.ReplaceAll(chromium(t, "--dump-dom", c.url), "<wbr>", "") // the fingerprint's wrap points
		for _, w := range c.want {
			if !strings.Contains(dom, w) {
				t.Errorf("%s: the rendered page lacks %q", c.name, w)
			}
		}
		shot := filepath.Join(dir, c.name+".png")
		chromium(t, "--screenshot="+shot, c.url)
		if strings.HasPrefix(c.name, "setup-") {
			// The whole page, down to the live view of the logins.
			chromiumSized(t, "390,3600", "--screenshot="+filepath.Join(dir, c.name+"-full.png"), c.url)
		}
		f, err := os.Open(shot)
		if err != nil {
			t.Fatalf("%s: no screenshot: %v", c.name, err)
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width != 390 {
			t.Errorf("%s: screenshot %dx%d, %v; want 390 px wide", c.name, cfg.Width, cfg.Height, err)
		}
	}
}
