package proxy

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/discover"
	"github.com/imapwhy/imapwhy/internal/shield"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// TestShieldKeysOnRewrittenName: discovery may rewrite the login name (an
// autoconfig file with %EMAILLOCALPART%), so two typed addresses can be one
// account upstream. The shield keys on the name actually sent: a password
// the server refused for taro@corp.test (sent as "taro") is held back when
// the same device types taro@other.test, which goes to the same server as
// "taro" too; typing another domain does not buy more tries.
func TestShieldKeysOnRewrittenName(t *testing.T) {
	up := startMemUpstream(t, map[string]string{"taro": "right-password"})
	_, upPort, _ := net.SplitHostPort(up.Addr)

	pki := testkit.NewPKI(t)
	web := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="corp">
    <incomingServer type="imap">
      <hostname>127.0.0.1</hostname>
      <port>` + upPort + `</port>
      <socketType>plain</socketType>
      <username>%EMAILLOCALPART%</username>
      <authentication>password-cleartext</authentication>
    </incomingServer>
  </emailProvider>
</clientConfig>`))
	}))
	web.TLS = pki.ServerConfig()
	web.StartTLS()
	t.Cleanup(web.Close)

	dns := testkit.NewDNS(t) // nothing resolves: only the autoconfig URL below answers
	sh := shield.New(shield.NewMemoryStore(100), shield.NewSecret(), shield.Options{
		Params:  shield.Params{Time: 1, Memory: 64, Threads: 1},
		Now:     testkit.NewClock(time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)).Now,
		OnError: func(err error) { t.Errorf("shield store: %v", err) },
	})
	t.Cleanup(func() { sh.Close() })
	srv, logs := startAutoServer(t, `discovery: {allow_private: true}
`, Options{
		Shield:   sh,
		Resolver: dns.Resolver(),
		discoverTest: func(o *discover.Options) {
			o.AllowPlaintext = true
			o.AutoconfigRoots = pki.Roots
			o.AutoconfigURLs = func(domain, email string) []string {
				return []string{web.URL + "/mail/config-v1.1.xml?domain=" + domain}
			}
		},
	})

	tries := sh.ForwardedTries()
	for i := range tries {
		if got := loginAnswer(t, srv, "taro@corp.test", "old-password"); !strings.HasPrefix(got, "a NO ") {
			t.Fatalf("try %d: %q", i+1, got)
		}
	}
	if n := up.Logins.Load(); n != int64(tries) {
		t.Fatalf("the server saw %d logins, want %d (discovery did not route taro@corp.test there?)", n, tries)
	}
	if got := loginAnswer(t, srv, "taro@other.test", "old-password"); !strings.HasPrefix(got, "a NO ") {
		t.Fatalf("other domain: %q", got)
	}
	testkit.WaitFor(t, func() bool { return len(logs.Events("auth_failure")) == tries+1 })
	if ev := logs.Events("auth_failure")[tries]; ev["held"] != true {
		t.Errorf("the same password for the same upstream name was not held back: %v", ev)
	}
	if n := up.Logins.Load(); n != int64(tries) {
		t.Errorf("the server saw %d logins, want still %d: another domain bought more tries", n, tries)
	}
	// The right password still goes through under either address.
	if got := loginAnswer(t, srv, "taro@other.test", "right-password"); !strings.HasPrefix(got, "a OK") {
		t.Errorf("right password: %q", got)
	}
}
