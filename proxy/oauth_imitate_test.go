package proxy_test

// OAuth logins through the proxy to the imitations of Gmail and Microsoft
// 365 (internal/imitate): their texts and challenge, read as they come.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/imitate"
	"github.com/imapwhy/imapwhy/internal/oauthsasl"
	"github.com/imapwhy/imapwhy/proxy"
)

func TestOAuthThroughImitations(t *testing.T) {
	ca, err := imitate.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	var yaml strings.Builder
	fmt.Fprintf(&yaml, "state_dir: %s\nlimits: {failure_delay_base: 1ms, failure_delay_max: 1ms}\nlisteners:\n", t.TempDir())
	provs := map[string]imitate.Provider{}
	for i, id := range []string{"gmail", "microsoft365"} {
		p, _ := imitate.Lookup(id)
		srv, err := imitate.Start(p, imitate.Options{CA: ca})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		provs[id] = p
		fmt.Fprintf(&yaml, "  - {address: %s:0, tls: implicit, language: en, upstream: {address: %q, tls: implicit, server_name: %s}}\n",
			listenHosts[i], srv.Addr(), p.Host)
	}
	cfg, err := config.Parse(strings.NewReader(yaml.String()))
	if err != nil {
		t.Fatal(err)
	}
	cert, caPEM := newProxyCert(t)
	logs := &lockedBuffer{}
	srv := startE2EProxy(t, cfg, proxy.Options{
		UpstreamRoots: ca.Pool(),
		TLS:           &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	}, logs)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	addrs := srv.Addrs()
	listener := map[string]string{"gmail": addrs[0].String(), "microsoft365": addrs[1].String()}

	scenario := func(provider, name string) imitate.Scenario {
		for _, s := range provs[provider].Scenarios {
			if s.Name == name {
				return s
			}
		}
		t.Fatalf("no scenario %s/%s", provider, name)
		return imitate.Scenario{}
	}
	for _, tc := range []struct {
		provider, scenario, mech string
		ok                       bool
		code, phrase, cause      string
	}{
		// Microsoft offers only XOAUTH2: an OAUTHBEARER client's token goes
		// with XOAUTH2.
		{"microsoft365", "oauth", "OAUTHBEARER", true, "", "", ""},
		{"microsoft365", "oauth-failed", "XOAUTH2", false, "AUTHENTICATIONFAILED", "issued for another service", "oauth.wrong_audience"},
		{"microsoft365", "oauth-not-connected", "OAUTHBEARER", false, "AUTHORIZATIONFAILED", "mailbox cannot be opened", "oauth.mailbox_not_enabled"},
		{"gmail", "oauth", "XOAUTH2", true, "", "", ""},
		{"gmail", "oauth-token-refused", "OAUTHBEARER", false, "AUTHENTICATIONFAILED", "refused the sign-in token", "oauth.token_rejected"},
	} {
		t.Run(tc.provider+"/"+tc.scenario+"/"+tc.mech, func(t *testing.T) {
			s := scenario(tc.provider, tc.scenario)
			addr := listener[tc.provider]
			host := strings.Split(addr, ":")[0]
			conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: host})
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(e2eTimeout))
			c := imapclient.New(conn, nil)
			defer c.Close()
			if !c.Caps().Has("AUTH=XOAUTH2") {
				t.Errorf("a known OAuth provider's listener does not advertise XOAUTH2: %v", c.Caps())
			}
			err = c.Authenticate(oauthsasl.Client{Mechanism: tc.mech, User: s.User, Token: s.Password})
			if tc.ok {
				if err != nil {
					t.Fatalf("authenticate: %v", err)
				}
				if _, err := c.Select("INBOX", nil).Wait(); err != nil {
					t.Errorf("SELECT: %v", err)
				}
				return
			}
			var ie *imap.Error
			if !errors.As(err, &ie) {
				t.Fatalf("authenticate: %v, want a NO", err)
			}
			if string(ie.Code) != tc.code || !strings.Contains(ie.Text, tc.phrase) {
				t.Errorf("NO [%s] %q, want [%s] saying %q", ie.Code, ie.Text, tc.code, tc.phrase)
			}
			if !strings.Contains(logs.String(), `"cause":"`+tc.cause+`"`) {
				t.Errorf("no %s in the log", tc.cause)
			}
		})
	}
	if !strings.Contains(logs.String(), `"oauth_status":"401","oauth_scope":"https://mail.google.com/"`) {
		t.Errorf("Gmail's decoded challenge is not in the log")
	}
	if !strings.Contains(logs.String(), `"mechanism":"OAUTHBEARER","upstream"`) {
		t.Errorf("no OAUTHBEARER login in the log")
	}
}
