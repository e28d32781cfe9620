package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestGatewaySettings(t *testing.T) {
	c, err := Parse(strings.NewReader(`
listeners:
  - address: 127.0.0.1:1993
    proxy_protocol: {trusted: [10.0.0.0/8, 192.0.2.7, "2001:db8::/32"]}
    upstream: {address: 127.0.0.1:993, proxy_protocol: v2}
state:
  redis: {address: 127.0.0.1:6379, db: 2}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Listeners[0].ProxyProtocol.Prefixes()
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32")}
	if len(got) != len(want) {
		t.Fatalf("prefixes %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("prefix %d: %v, want %v", i, got[i], want[i])
		}
	}
	r := c.State.Redis
	if !r.On() || r.KeyPrefix != "imapwhy:" || r.Timeout.D() != 250*time.Millisecond || r.DB != 2 {
		t.Errorf("redis defaults: %+v", r)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("warnings: %q", w)
	}
	c.Shield.Store = StoreFile
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], "shield.store") {
		t.Errorf("shield.store file with Redis: warnings %q", w)
	}
	if Default().State.Redis.On() {
		t.Error("Redis is on by default")
	}
}

// TestPredialSettings: a fixed upstream is dialled before the login unless
// the listener says not to; auto never is.
func TestPredialSettings(t *testing.T) {
	c, err := Parse(strings.NewReader(`
listeners:
  - {address: 127.0.0.1:1993, upstream: {address: 127.0.0.1:993}}
  - {address: 127.0.0.1:1994, upstream: {address: 127.0.0.1:993, predial: false}}
  - {address: 127.0.0.1:1995, upstream: {address: 127.0.0.1:993, predial: true}}
  - {address: 127.0.0.1:1996, upstream: {address: auto, predial: false}}
`))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false, true, false} {
		if got := c.Listeners[i].Upstream.PredialOn(); got != want {
			t.Errorf("listeners[%d]: predial %v, want %v", i, got, want)
		}
	}
	for i, l := range Default().Listeners {
		if l.Upstream.PredialOn() {
			t.Errorf("default listeners[%d] (auto): predial on", i)
		}
	}
}

func TestGatewayErrors(t *testing.T) {
	checkRefused(t, []refused{
		{`listeners: [{address: "127.0.0.1:1", proxy_protocol: {trusted: [10.0.0.300/8]}}]`, "listeners[0].proxy_protocol.trusted[0]"},
		{`listeners: [{address: "127.0.0.1:1", proxy_protocol: {trusted: [nonsense]}}]`, "listeners[0].proxy_protocol.trusted[0]"},
		{`listeners: [{address: "127.0.0.1:1", proxy_protocol: {trusted: ["::ffff:10.0.0.0/90"]}}]`, "listeners[0].proxy_protocol.trusted[0]"},
		{`listeners: [{address: "127.0.0.1:1", proxy_protocol: {untrusted: []}}]`, "untrusted"},
		{`listeners: [{address: "127.0.0.1:1", upstream: {address: "127.0.0.1:2", proxy_protocol: v1}}]`, "listeners[0].upstream.proxy_protocol"},
		{`listeners: [{address: "127.0.0.1:1", upstream: {address: auto, proxy_protocol: v2}}]`, "not auto"},
		{`routes: [{domain: example.com, upstream: {address: "127.0.0.1:2", proxy_protocol: v2}}]`, "routes[0].upstream.proxy_protocol"},
		{`listeners: [{address: "127.0.0.1:1", upstream: {address: auto, predial: true}}]`, "listeners[0].upstream.predial"},
		{`routes: [{domain: example.com, upstream: {address: "127.0.0.1:2", predial: false}}]`, "routes[0].upstream.predial"},
		{`state: {redis: {address: "nohost"}}`, "state.redis.address"},
		{`state: {redis: {key_prefix: "x:"}}`, "state.redis.address"},
		{`state: {redis: {address: "127.0.0.1:6379", db: -1}}`, "state.redis.db"},
		{`state: {redis: {address: "127.0.0.1:6379", timeout: 10s}}`, "state.redis.timeout"},
		{`state: {redis: {address: "127.0.0.1:6379", ca_file: /x}}`, "state.redis.ca_file"},
		{`state: {redis: {address: "127.0.0.1:6379", passsword_file: /x}}`, "passsword_file"},
	})
}
