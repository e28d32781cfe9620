package proxy_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/dovecottest"
	"github.com/imapwhy/imapwhy/internal/testkit"
	"github.com/imapwhy/imapwhy/proxy"
)

// TestDovecotDiagnoses logs in through the proxy to a real Dovecot (and to
// an SMTP server, and with the wrong certificate name) the ways people get
// it wrong, and checks the cause in the log and the message the app sees.
func TestDovecotDiagnoses(t *testing.T) {
	dc := dovecottest.Start(t, dovecottest.Options{})
	smtp := testkit.SMTP(t)
	proxy.RegisterTestSecrets("alicepass ", "ａｌｉｃｅｐａｓｓ", "carolpass", "nologinpass", "disabledpass", "x-expired", "x-tempfail")

	// Listeners: en to Dovecot, ja to Dovecot, en to the SMTP port, en to
	// Dovecot under a name its certificate does not have.
	cfg, err := config.Parse(strings.NewReader(fmt.Sprintf(`
state_dir: %s
log: {level: debug}
limits: {failure_delay_base: 1ms, failure_delay_max: 1ms}
listeners:
  - {address: "127.0.0.1:0", tls: implicit, language: en, upstream: {address: %q}}
  - {address: "127.0.0.1:0", tls: implicit, language: ja, upstream: {address: %q}}
  - {address: "127.0.0.1:0", tls: implicit, language: en, upstream: {address: %q}}
  - {address: "127.0.0.1:0", tls: implicit, language: en, upstream: {address: %q, server_name: imap.wrong.test}}
`, t.TempDir(), dc.IMAPS, dc.IMAPS, smtp, dc.IMAPS)))
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	cert, caPEM := newProxyCert(t)
	srv := startE2EProxy(t, cfg, proxy.Options{
		TLS:           &tls.Config{Certificates: []tls.Certificate{cert}},
		UpstreamRoots: dc.CAPool,
	}, logs)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	addrs := srv.Addrs()

	for _, tc := range []struct {
		name       string
		listener   int
		user, pass string
		cause      string
		text       string // the message must contain this
	}{
		{"trailing space", 0, "alice", "alicepass ", "password.surrounding_space", "space"},
		{"full-width", 0, "alice", "ａｌｉｃｅｐａｓｓ", "password.fullwidth", "full-width"},
		{"full-width in Japanese", 1, "alice", "ａｌｉｃｅｐａｓｓ", "password.fullwidth", "全角"},
		// Nothing says this Dovecot wants full addresses: the honest
		// fallback, naming the missing domain as the other cause.
		{"user name without domain", 0, "carol", "carolpass", "credentials.rejected", "full email address"},
		{"login disabled", 0, "nologin", "nologinpass", "account.disabled", "disabled"},
		{"account disabled with a reason", 0, "disabled", "disabledpass", "account.disabled", "disabled"},
		{"password expired", 0, "expired", "x-expired", "account.password_expired", "expired"},
		{"temporary failure", 0, "tempfail1", "x-tempfail", "server.temporary_failure", "temporary"},
		{"SMTP port", 2, "alice", "alicepass", "upstream.not_imap", "its port is not IMAP"},
		{"certificate for another name", 3, "alice", "alicepass", "upstream.certificate_name", "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := strings.Count(logs.String(), `"event":"auth_failure"`)
			c, err := tls.Dial("tcp", addrs[tc.listener].String(), &tls.Config{RootCAs: pool, ServerName: "localhost"})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			rc := newRawConn(t, c)
			rc.Greeting()
			if tc.listener == 1 {
				// The Japanese listener: Japanese only once asked for.
				rc.Command("l LANGUAGE JA")
			}
			lines := rc.Command("a LOGIN " + quote(tc.user) + " " + quote(tc.pass))
			no := lines[len(lines)-1]
			if !strings.HasPrefix(no, "a NO [") || !strings.Contains(no, tc.text) {
				t.Errorf("answer %q, want a NO saying %q", no, tc.text)
			}
			ev := logs.events("auth_failure")
			if len(ev) != before+1 {
				t.Fatalf("%d auth_failure events, want %d", len(ev), before+1)
			}
			last := ev[len(ev)-1]
			if !strings.Contains(last, `"cause":"`+tc.cause+`"`) {
				t.Errorf("logged %s, want cause %s", last, tc.cause)
			}
			if tc.user == "carol" && (!strings.Contains(last, `"confidence":"low"`) || !strings.Contains(last, `"alternative":"username.missing_domain"`)) {
				t.Errorf("logged %s, want username.missing_domain as the alternative", last)
			}
		})
	}
}
