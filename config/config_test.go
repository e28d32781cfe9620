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
	files, err := filepath.Glob(filepath.Join("..", "configs", "*.yaml"))
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
	c, err := Load(filepath.Join("..", "configs", "gateway.yaml"))
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
	for _, tc := range []struct{ yaml, want string }{
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
	} {
		_, err := Parse(strings.NewReader(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want an error naming %q", tc.yaml, err, tc.want)
		}
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
