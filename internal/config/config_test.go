package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExamples loads every example in configs/: what the docs tell people
// to copy must load.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "configs", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("want at least a local and a gateway example, found %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Listeners) == 0 {
				t.Fatal("no listeners")
			}
		})
	}
	c, err := Load(filepath.Join("..", "..", "configs", "gateway.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS.ACME == nil || c.TLS.ACME.Domains[0] != "mail-gw.example.com" || c.Timeouts.Drain.D() != 2*time.Minute {
		t.Errorf("gateway example read wrongly: %+v", c)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse(strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Listeners) != 2 || c.Listeners[0].Address != "127.0.0.1:1993" || c.Listeners[1].TLS != TLSStartTLS {
		t.Errorf("default listeners: %+v", c.Listeners)
	}
	for _, l := range c.Listeners {
		if l.Upstream.Address != UpstreamAuto || l.Language != "en" {
			t.Errorf("default listener %+v", l)
		}
	}
	if c.Log.Format != "json" || c.Timeouts.PreAuth.D() != time.Minute || c.Limits.MaxLine != 8192 || c.StateDir == "" {
		t.Errorf("defaults not applied: %+v", c)
	}
	c, err = Parse(strings.NewReader("listeners:\n  - address: 127.0.0.1:2993\n    upstream: {address: 'mail.example.com:993'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if u := c.Listeners[0].Upstream; u.ServerName != "mail.example.com" || u.TLS != TLSImplicit {
		t.Errorf("upstream defaults: %+v", u)
	}
}

// TestErrors checks that each mistake is refused with the key named.
func TestErrors(t *testing.T) {
	checkRefused(t, []refused{
		{"listner: []", "listner"},
		{"listeners:\n  - address: 127.0.0.1:1\n    tsl: none", "tsl"},
		{"log: {format: xml}", "log.format"},
		{"listeners:\n  - address: 0.0.0.0:143\n    tls: none", "listeners[0].tls"},
		{"listeners:\n  - address: 127.0.0.1:143\n    upstream: {address: 'imap.example.com:143', tls: none}", "listeners[0].upstream.tls"},
		{"listeners:\n  - address: nohostport", "listeners[0].address"},
		{"listeners:\n  - address: 127.0.0.1:1\n    language: de", "listeners[0].language"},
		{"listeners:\n  - {address: '127.0.0.1:1'}\n  - {address: '127.0.0.1:1'}", "used twice"},
		{"timeouts: {preauth: soon}", "not a duration"},
		{"tls: {cert_file: /x}", "key_file"},
		{"tls: {acme: {email: a@b}}", "tls.acme.domains"},
		{"tls: {acme: {domains: [a.example]}}", "tls.acme.email"},
		{"listeners:\n  - address: 127.0.0.1:1\n    upstream: {address: 'noport'}", "listeners[0].upstream.address"},
		{"admin: {address: ':9143'}", "admin.address"},
		{"limits: {failure_delay_base: 20s, failure_delay_max: 10s}", "limits.failure_delay_max"},
		{"limits: {failure_delay_base: -1s}", "negative"},
		{"limits: {per_address_logins_per_minute: -2}", "limits.per_address_logins_per_minute"},
		{"limits: {per_user_logins_per_minute: -5}", "limits.per_user_logins_per_minute"},
		{"limits: {per_address_connections: -3}", "limits.per_address_connections"},
		{"limits: {per_address_conections: 3}", "per_address_conections"},
		{"shield: {store: disk}", "shield.store"},
		{"shield: {forwarded_tries: -1}", "shield.forwarded_tries"},
		{"shield: {window: 2h, history_ttl: 1h}", "shield.history_ttl"},
		{"shield: {max_users: -1}", "shield.max_users"},
		{"shield: {enabled: maybe}", "maybe"},
		{"shield: {windw: 1h}", "windw"},
		{"routes:\n  - {domain: 'a@b', upstream: {address: 'h:1'}}", "routes[0].domain"},
		{"routes:\n  - {domain: a.example, upstream: {address: auto}}", "routes[0].upstream.address"},
		{"routes:\n  - {domain: a.example, upstream: {address: 'h:1'}}\n  - {domain: A.example, upstream: {address: 'h:1'}}", "routed twice"},
		{"routes:\n  - {domain: a.example, upstream: {address: 'imap.a.example:143', tls: none}}", "routes[0].upstream.tls"},
		{"discovery: {allow_domains: ['']}", "discovery.allow_domains[0]"},
		{"discovery: {allow_privat: true}", "allow_privat"},
	})
}

// TestProtectionDefaults: the shield is on, in memory, and the rate limits
// have Dovecot-like values, unless the file says otherwise.
func TestProtectionDefaults(t *testing.T) {
	c, err := Parse(strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	wantLimits := Limits{
		MaxLine: 8192, MaxLiteral: 8192, MaxCommands: 100, MaxBadCommands: 5, MaxLoginTries: 5,
		FailureDelayBase: Duration(2 * time.Second), FailureDelayMax: Duration(15 * time.Second),
		PerAddressLoginsPerMinute: 60, PerUserLoginsPerMinute: 20, PerAddressConnections: 50,
	}
	if c.Limits != wantLimits {
		t.Errorf("limits %+v, want %+v", c.Limits, wantLimits)
	}
	sh := c.Shield
	if !sh.On() || sh.Store != StoreMemory || sh.ForwardedTries != 3 || sh.Window.D() != time.Hour ||
		sh.HistoryTTL.D() != 30*24*time.Hour || sh.MaxUsers != 100000 {
		t.Errorf("shield defaults %+v (on %v)", sh, sh.On())
	}
	if c.Admin.Address != "" || Default().Admin.Address != "" {
		t.Errorf("admin listener on by default: %q", c.Admin.Address)
	}
	if !Default().Shield.On() || Default().Limits != wantLimits {
		t.Errorf("Default() differs from an empty file: %+v %+v", Default().Shield, Default().Limits)
	}

	c, err = Parse(strings.NewReader(`
admin: {address: '127.0.0.1:9143'}
limits: {failure_delay_base: 1s, failure_delay_max: 1s, per_address_logins_per_minute: -1, per_address_connections: 7}
shield: {enabled: false, store: file, forwarded_tries: 1, window: 10m, history_ttl: 24h, max_users: 10}
`))
	if err != nil {
		t.Fatal(err)
	}
	m := c.Limits
	if m.FailureDelayBase.D() != time.Second || m.FailureDelayMax.D() != time.Second ||
		m.PerAddressLoginsPerMinute != Unlimited || m.PerUserLoginsPerMinute != 20 || m.PerAddressConnections != 7 {
		t.Errorf("limits read wrongly: %+v", m)
	}
	sh = c.Shield
	if sh.On() || sh.Store != StoreFile || sh.ForwardedTries != 1 || sh.Window.D() != 10*time.Minute ||
		sh.HistoryTTL.D() != 24*time.Hour || sh.MaxUsers != 10 {
		t.Errorf("shield read wrongly: %+v (on %v)", sh, sh.On())
	}
	if c.Admin.Address != "127.0.0.1:9143" {
		t.Errorf("admin.address %q", c.Admin.Address)
	}
}

func TestPortZeroTwice(t *testing.T) {
	if _, err := Parse(strings.NewReader("listeners:\n  - {address: '127.0.0.1:0'}\n  - {address: '127.0.0.1:0'}")); err != nil {
		t.Errorf("two listeners on free ports refused: %v", err)
	}
}

func TestLoopback(t *testing.T) {
	for host, want := range map[string]bool{"localhost": true, "127.0.0.2": true, "::1": true, "10.0.0.1": false, "example.com": false} {
		if IsLoopbackHost(host) != want {
			t.Errorf("IsLoopbackHost(%q) != %v", host, want)
		}
	}
}

func TestRouting(t *testing.T) {
	c, err := Parse(strings.NewReader(`
discovery: {allow_domains: [example.com]}
routes:
  - domain: example.com
    upstream: {address: "imap.example.com:993"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Routes[0].Upstream; r.TLS != TLSImplicit || r.ServerName != "imap.example.com" || c.Discovery.CacheTTL.D() != time.Hour {
		t.Errorf("routing defaults: %+v %+v", r, c.Discovery)
	}
}

// TestAutoUpstreamSafety: insecure_skip_verify on an auto listener would
// turn verification off for every discovered server, so it is refused; a
// gateway relaying to any domain is warned about, a local proxy or a
// gateway with allow_domains is not.
func TestAutoUpstreamSafety(t *testing.T) {
	_, err := Parse(strings.NewReader("listeners:\n  - {address: '127.0.0.1:1993', upstream: {address: auto, insecure_skip_verify: true}}\n"))
	if err == nil || !strings.Contains(err.Error(), "listeners[0].upstream.insecure_skip_verify") {
		t.Errorf("insecure_skip_verify with auto: %v", err)
	}
	if _, err := Parse(strings.NewReader("listeners:\n  - {address: '127.0.0.1:1993', upstream: {address: '127.0.0.1:993', insecure_skip_verify: true}}\n")); err != nil {
		t.Errorf("insecure_skip_verify for a given server: %v", err)
	}
	for _, tc := range []struct {
		yaml string
		warn bool
	}{
		{"listeners:\n  - {address: '0.0.0.0:993', upstream: {address: auto}}\n", true},
		{"listeners:\n  - {address: '0.0.0.0:993', upstream: {address: auto}}\ndiscovery: {allow_domains: [example.com]}\n", false},
		{"listeners:\n  - {address: '0.0.0.0:993', upstream: {address: 'imap.example.com:993'}}\n", false},
		{"listeners:\n  - {address: '127.0.0.1:1993', upstream: {address: auto}}\n", false},
	} {
		c, err := Parse(strings.NewReader(tc.yaml))
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		w := c.Warnings()
		if got := len(w) > 0 && strings.Contains(w[0], "discovery.allow_domains"); got != tc.warn || (!tc.warn && len(w) > 0) {
			t.Errorf("%q: warnings %q, want a warning: %v", tc.yaml, w, tc.warn)
		}
	}
}

// TestLocalModeRefusedBehindProxyProtocol: local mode trusts the viewer's
// TCP address, which behind a load balancer is the balancer's; a listener
// taking PROXY headers refuses local mode and makes auto a gateway.
func TestLocalModeRefusedBehindProxyProtocol(t *testing.T) {
	const l = "listeners:\n  - {address: '127.0.0.1:1993', upstream: {address: auto}, proxy_protocol: {trusted: [127.0.0.1]}}\n"
	if _, err := Parse(strings.NewReader(l + "web: {mode: local}\n")); err == nil || !strings.Contains(err.Error(), "listeners[0] takes PROXY headers") {
		t.Errorf("local mode with PROXY headers: %v", err)
	}
	c, err := Parse(strings.NewReader(l))
	if err != nil {
		t.Fatal(err)
	}
	if c.LocalMode() {
		t.Error("auto resolves to local mode behind a load balancer")
	}
}

// refused is a configuration that Parse must refuse, with an error naming
// want (a key, or a line).
type refused struct{ yaml, want string }

// checkRefused parses each configuration and checks its error.
func checkRefused(t *testing.T, cases []refused) {
	t.Helper()
	for _, tc := range cases {
		if _, err := Parse(strings.NewReader(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want an error naming %q", tc.yaml, err, tc.want)
		}
	}
}
