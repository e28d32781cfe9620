package main

import (
	"context"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/proxy"
)

// TestOAuthBridgeConnectLink: a password refused because Microsoft wants
// OAuth, for an account the bridge serves, and a bridged account whose
// sign-in has ended, are pointed to /connect: the ALERT's link, and the
// message the incident page and the notice mailbox show. Other refusals
// and other accounts are left alone.
func TestOAuthBridgeConnectLink(t *testing.T) {
	cfg, err := config.Parse(strings.NewReader(`
state_dir: ` + t.TempDir() + `
web: {address: "127.0.0.1:0", public_url: "https://gw.example.test"}
oauth_bridge:
  providers:
    - kind: microsoft
      client_id: 11111111-2222-3333-4444-555555555555
      domains: [contoso.example]
`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := openBridge(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	var seen proxy.Refusal
	wrapped := connectLink(b, func(_ context.Context, rf proxy.Refusal) proxy.Answer {
		seen = rf
		return proxy.Answer{Link: "https://gw.example.test/why/x"}
	})
	const want = "https://gw.example.test/connect?user=alice%40contoso.example"
	for _, tc := range []struct {
		user  string
		cause diagnose.Cause
		lang  string
		link  bool
	}{
		{"alice@contoso.example", diagnose.CauseProviderOAuthRequired, "en", true},
		{"alice@contoso.example", diagnose.CauseOAuthReconnectRequired, "ja", true},
		{"alice@contoso.example", diagnose.CauseCredentialsRejected, "en", false},
		{"bob@other.example", diagnose.CauseProviderOAuthRequired, "en", false},
	} {
		ans := wrapped(context.Background(), proxy.Refusal{User: tc.user, Lang: tc.lang, Message: "msg", Diagnosis: diagnose.Of(tc.cause)})
		switch {
		case tc.link && (!strings.HasPrefix(ans.Link, want) || !strings.HasSuffix(seen.Message, ans.Link) || !strings.HasPrefix(seen.Message, "msg ")):
			t.Errorf("%s %s: link %q, message %q", tc.user, tc.cause, ans.Link, seen.Message)
		case !tc.link && (ans.Link == want || seen.Message != "msg"):
			t.Errorf("%s %s: pointed to /connect: %q, %q", tc.user, tc.cause, ans.Link, seen.Message)
		}
	}
}
