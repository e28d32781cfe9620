package setup

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/internal/certs"
	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/discover"
)

// rig is a set-up handler over a real local CA, served by httptest.
type rig struct {
	srv    *httptest.Server
	cm     *certs.Manager
	events *Events
	h      *Handler
}

func newRig(t *testing.T) *rig {
	t.Helper()
	cm, err := certs.New(context.Background(), config.TLS{}, t.TempDir(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cm.Close() })
	ev := NewEvents(nil)
	h, err := New(Options{
		CAFile: cm.CAFile(), CAFingerprint: cm.Fingerprint(),
		Listeners: []Listener{{Port: 1143, TLS: "starttls"}, {Port: 1993, TLS: "implicit"}},
		WebPort:   8443, Events: ev,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { ev.Close(); srv.Close() })
	return &rig{srv: srv, cm: cm, events: ev, h: h}
}

func get(t *testing.T, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// profileJSON is what the Python side prints of a parsed profile.
type profileJSON struct {
	PayloadType       string
	PayloadIdentifier string
	PayloadUUID       string
	PayloadVersion    int
	PayloadContent    []map[string]any
	CADER             string `json:"ca_der_hex"`
}

// plistlib parses a profile with Python's plistlib and prints it as JSON
// (data fields as hex).
func plistlib(t *testing.T, profile []byte) profileJSON {
	t.Helper()
	const py = `import json, plistlib, sys
p = plistlib.loads(sys.stdin.buffer.read())
def conv(v):
    if isinstance(v, bytes): return v.hex()
    if isinstance(v, dict): return {k: conv(x) for k, x in v.items()}
    if isinstance(v, list): return [conv(x) for x in v]
    return v
print(json.dumps(conv(p)))`
	cmd := exec.Command("python3", "-c", py)
	cmd.Stdin = bytes.NewReader(profile)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("plistlib: %v\n%s", err, out)
	}
	var p profileJSON
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return p
}

// TestProfile: the profile parses with plistlib into the payloads Apple
// documents, holds the CA of the state directory, points Mail at the
// implicit-TLS listener with the provider's SMTP server, and its Web Clip
// opens the status page; identifiers are the same each time.
func TestProfile(t *testing.T) {
	r := newRig(t)
	url := r.srv.URL + "/setup/profile.mobileconfig?email=Taro.Yamada@GMail.com"
	resp, body := get(t, url, "Accept-Language", "ja-JP,ja;q=0.9")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-apple-aspen-config" {
		t.Fatalf("%s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, k := range []string{"<key>IncomingPassword</key>", "<key>OutgoingPassword</key>"} {
		if bytes.Contains(body, []byte(k)) {
			t.Errorf("the profile holds %s", k)
		}
	}
	p := plistlib(t, body)
	if p.PayloadType != "Configuration" || p.PayloadVersion != 1 || p.PayloadIdentifier == "" || p.PayloadUUID == "" {
		t.Errorf("top level: %+v", p)
	}
	caPEM, err := os.ReadFile(r.cm.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(caPEM)
	byType := map[string]map[string]any{}
	for _, pl := range p.PayloadContent {
		typ, _ := pl["PayloadType"].(string)
		byType[typ] = pl
		for _, k := range []string{"PayloadIdentifier", "PayloadUUID", "PayloadVersion", "PayloadDisplayName"} {
			if pl[k] == nil {
				t.Errorf("%s: no %s", typ, k)
			}
		}
		if !strings.HasPrefix(pl["PayloadIdentifier"].(string), p.PayloadIdentifier+".") {
			t.Errorf("%s: identifier %v not under %s", typ, pl["PayloadIdentifier"], p.PayloadIdentifier)
		}
	}
	root := byType["com.apple.security.root"]
	if root == nil || root["PayloadContent"] != hexOf(blk.Bytes) {
		t.Errorf("root payload: not the state directory's CA: %v", root)
	}
	if c, err := x509.ParseCertificate(blk.Bytes); err != nil || !c.IsCA {
		t.Errorf("state directory CA: %v", err)
	}
	mail := byType["com.apple.mail.managed"]
	want := map[string]any{
		"EmailAccountType": "EmailTypeIMAP", "EmailAddress": "Taro.Yamada@gmail.com",
		"IncomingMailServerHostName": "127.0.0.1", "IncomingMailServerPortNumber": float64(1993),
		"IncomingMailServerUseSSL": true, "IncomingMailServerUsername": "Taro.Yamada@gmail.com",
		"IncomingMailServerAuthentication": "EmailAuthPassword",
		"OutgoingMailServerHostName":       "smtp.gmail.com", "OutgoingMailServerPortNumber": float64(465),
		"OutgoingMailServerUseSSL": true, "OutgoingMailServerAuthentication": "EmailAuthPassword",
	}
	for k, v := range want {
		if mail[k] != v {
			t.Errorf("mail payload %s = %v, want %v", k, mail[k], v)
		}
	}
	clip := byType["com.apple.webClip.managed"]
	if clip == nil || clip["URL"] != "https://127.0.0.1:8443/" || clip["Label"] != "メールの状態" || clip["IsRemovable"] != true {
		t.Errorf("web clip: %v", clip)
	}
	if len(p.PayloadContent) != 3 {
		t.Errorf("%d payloads, want 3", len(p.PayloadContent))
	}
	if !strings.Contains(p.PayloadContent[0]["PayloadDescription"].(string), r.cm.Fingerprint()) {
		t.Errorf("the CA payload's description does not show the fingerprint %s", r.cm.Fingerprint())
	}

	// The same address again (any case): the same identifiers, so that
	// iOS replaces the installed profile; another address: others.
	_, again := get(t, r.srv.URL+"/setup/profile.mobileconfig?email=taro.yamada@gmail.com")
	p2 := plistlib(t, again)
	if p2.PayloadIdentifier != p.PayloadIdentifier || p2.PayloadUUID != p.PayloadUUID ||
		p2.PayloadContent[1]["PayloadUUID"] != p.PayloadContent[1]["PayloadUUID"] {
		t.Errorf("identifiers differ for the same address: %s %s, %s %s", p.PayloadIdentifier, p.PayloadUUID, p2.PayloadIdentifier, p2.PayloadUUID)
	}
	_, other := get(t, r.srv.URL+"/setup/profile.mobileconfig?email=hanako@docomo.ne.jp")
	p3 := plistlib(t, other)
	if p3.PayloadIdentifier == p.PayloadIdentifier || p3.PayloadUUID == p.PayloadUUID {
		t.Error("two addresses share identifiers")
	}
	for _, bad := range []string{"", "nobody", "a@b", "x@example.com\r\nX: y", "<a@example.com>"} {
		if resp, _ := get(t, r.srv.URL+"/setup/profile.mobileconfig?email="+urlQuery(bad)); resp.StatusCode != 400 {
			t.Errorf("email %q: status %d, want 400", bad, resp.StatusCode)
		}
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, x := range b {
		out = append(out, digits[x>>4], digits[x&15])
	}
	return string(out)
}

func urlQuery(s string) string {
	r := strings.NewReplacer("%", "%25", "&", "%26", "+", "%2B", " ", "%20", "\r", "%0D", "\n", "%0A", "<", "%3C", ">", "%3E", "@", "%40")
	return r.Replace(s)
}

// TestCADownloads: the CA as PEM and DER, with the MIME type phones
// install from.
func TestCADownloads(t *testing.T) {
	r := newRig(t)
	caPEM, _ := os.ReadFile(r.cm.CAFile())
	blk, _ := pem.Decode(caPEM)
	for path, want := range map[string][]byte{"/setup/ca.pem": pem.EncodeToMemory(blk), "/setup/ca.crt": blk.Bytes} {
		resp, body := get(t, r.srv.URL+path)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-x509-ca-cert" || !bytes.Equal(body, want) {
			t.Errorf("%s: %d %s, %d bytes", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
	}
}

// TestAutoconfig: both autoconfig URLs give a file that imapwhy's own
// discovery and Python's XML parser read as imapwhy's listeners and the
// provider's SMTP server.
func TestAutoconfig(t *testing.T) {
	r := newRig(t)
	for _, c := range []struct{ path, user string }{
		{"/mail/config-v1.1.xml?emailaddress=taro@gmail.com", "taro@gmail.com"},
		{"/.well-known/autoconfig/mail/config-v1.1.xml", "%EMAILADDRESS%"},
	} {
		resp, body := get(t, r.srv.URL+c.path)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/xml") {
			t.Fatalf("%s: %d %s", c.path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		res, err := discover.ParseAutoconfig(body, "gmail.com", false)
		if err != nil || res.Host != "127.0.0.1" || res.Port != 1993 || res.TLS != config.TLSImplicit || res.Username != c.user {
			t.Errorf("%s: discovery read %+v, %v", c.path, res, err)
		}
		const py = `import sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.buffer.read())
for s in root.iter():
    if s.tag in ("incomingServer", "outgoingServer"):
        print(s.tag, s.get("type"), s.findtext("hostname"), s.findtext("port"), s.findtext("socketType"), s.findtext("username"))`
		cmd := exec.Command("python3", "-c", py)
		cmd.Stdin = bytes.NewReader(body)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("python xml: %v\n%s", err, out)
		}
		want := "incomingServer imap 127.0.0.1 1143 STARTTLS " + c.user + "\n" +
			"incomingServer imap 127.0.0.1 1993 SSL " + c.user + "\n"
		if c.user == "taro@gmail.com" {
			want += "outgoingServer smtp smtp.gmail.com 465 SSL taro@gmail.com\n"
		} else {
			want += "outgoingServer smtp smtp.%EMAILDOMAIN% 587 STARTTLS %EMAILADDRESS%\n"
		}
		if string(out) != want {
			t.Errorf("%s: python read\n%s\nwant\n%s", c.path, out, want)
		}
	}
}

// TestPageLanguagesAndCard: the page answers in the browser's language and
// shows the settings for the address typed.
func TestPageLanguagesAndCard(t *testing.T) {
	r := newRig(t)
	resp, body := get(t, r.srv.URL+"/setup?email=hanako@docomo.ne.jp", "Accept-Language", "ja,en;q=0.5",
		"User-Agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)")
	page := strings.ReplaceAll(string(body), "<wbr>", "") // the fingerprint's wrap points
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, want := range []string{`lang="ja"`, "imapwhy でメールアプリを設定", "プロファイルをダウンロード",
		"/setup/profile.mobileconfig?email=hanako%40docomo.ne.jp", "smtp.spmode.ne.jp", "1993", r.cm.Fingerprint()} {
		if !strings.Contains(page, want) {
			t.Errorf("ja page lacks %q", want)
		}
	}
	if strings.Index(page, `id="apple"`) > strings.Index(page, `id="other"`) {
		t.Error("iPhone: the profile is not the first section")
	}
	_, body = get(t, r.srv.URL+"/setup?email=bob@example.org", "Accept-Language", "en-US")
	page = string(body)
	for _, want := range []string{`lang="en"`, "Set up your mail app", "smtp.example.org", "this is a guess"} {
		if !strings.Contains(page, want) {
			t.Errorf("en page lacks %q", want)
		}
	}
	_, body = get(t, r.srv.URL+"/setup?email=not-an-address", "Accept-Language", "en")
	if !strings.Contains(string(body), "That is not an email address") {
		t.Error("a bad address is not explained")
	}
}

// TestPlainLink: over plain HTTP only the link's prefix serves, and not
// once it expired.
func TestPlainLink(t *testing.T) {
	r := newRig(t)
	now := time.Now()
	clock := func() time.Time { return now }
	l := NewLink(time.Minute, clock)
	plain := httptest.NewServer(r.h.PlainHandler(l))
	defer plain.Close()
	resp, body := get(t, plain.URL+l.Path()+"?email=a@gmail.com")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `href="`+l.Prefix()+`/setup/profile.mobileconfig?email=a%40gmail.com"`) {
		t.Errorf("link page: %d; links not under the prefix", resp.StatusCode)
	}
	if resp, _ := get(t, plain.URL+l.Prefix()+"/setup/ca.crt"); resp.StatusCode != 200 {
		t.Errorf("CA through the link: %d", resp.StatusCode)
	}
	for _, path := range []string{"/setup", "/setup/ca.pem", "/s/wrongtoken/setup", "/s/", "/"} {
		if resp, _ := get(t, plain.URL+path); resp.StatusCode != 404 {
			t.Errorf("%s over plain HTTP: %d, want 404", path, resp.StatusCode)
		}
	}
	now = now.Add(2 * time.Minute)
	if resp, body := get(t, plain.URL+l.Path(), "Accept-Language", "en"); resp.StatusCode != 410 || !strings.Contains(string(body), "expired") {
		t.Errorf("expired link: %d %s", resp.StatusCode, body)
	}
}

// TestLiveEvents: the stream gives the viewer's own device's events, in
// order, and not other clients'; the page shows those already there.
func TestLiveEvents(t *testing.T) {
	r := newRig(t)
	me := netip.MustParseAddr("127.0.0.1")
	r.events.Publish(Event{Client: me, Kind: KindUntrusted})
	resp, err := http.Get(r.srv.URL + "/setup/events?email=taro@gmail.com")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	next := func() eventJSON {
		t.Helper()
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ev eventJSON
				if err := json.Unmarshal([]byte(d), &ev); err != nil {
					t.Fatal(err)
				}
				return ev
			}
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return eventJSON{}
	}
	if ev := next(); ev.Kind != KindUntrusted {
		t.Errorf("backlog: %+v", ev)
	}
	r.events.Publish(Event{Client: netip.MustParseAddr("192.0.2.7"), Kind: KindRefused, User: "taro@gmail.com", Message: "not mine"})
	r.events.Publish(Event{Client: me, Kind: KindRefused, User: "someone@else.example", Message: "not this address"})
	r.events.Publish(Event{Client: me, Kind: KindRefused, User: "taro@gmail.com", Message: "wrong password", Steps: []string{"type it again"}})
	r.events.Publish(Event{Client: me, Kind: KindLogin, User: "Taro@gmail.com"})
	if ev := next(); ev.Kind != KindRefused || ev.Message != "wrong password" || len(ev.Steps) != 1 {
		t.Errorf("first: %+v", ev)
	}
	if ev := next(); ev.Kind != KindLogin {
		t.Errorf("second: %+v", ev)
	}
	_, body := get(t, r.srv.URL+"/setup?email=taro@gmail.com", "Accept-Language", "en")
	page := string(body)
	ok, bad := strings.Index(page, "Your device logged in as Taro@gmail.com."), strings.Index(page, "wrong password")
	if ok < 0 || bad < 0 || ok > bad || strings.Contains(page, "not mine") || strings.Contains(page, "not this address") {
		t.Errorf("page events (newest first, mine only):\n%s", page)
	}
}

// TestPaths: every path the handler serves is under Paths.
func TestPaths(t *testing.T) {
	r := newRig(t)
	mux := http.NewServeMux()
	for _, p := range Paths {
		mux.Handle(p, r.h)
	}
	for _, p := range []string{"/setup", "/setup/ca.pem", "/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml"} {
		req := httptest.NewRequest("GET", p, nil)
		if _, pat := mux.Handler(req); pat == "" {
			t.Errorf("%s: not under Paths", p)
		}
	}
}
