package config

import (
	"net/netip"
	"strings"
	"testing"
)

func TestClientAllowed(t *testing.T) {
	local := Default()
	allow := local.ClientAllowed()
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "::1": true, "192.168.1.23": true, "10.1.2.3": true, "172.20.0.1": true,
		"fd00::1": true, "169.254.1.1": true, "::ffff:192.168.0.2": true,
		"203.0.113.5": false, "8.8.8.8": false, "2001:db8::1": false, "172.32.0.1": false,
	} {
		if got := allow(netip.MustParseAddr(addr)); got != want {
			t.Errorf("local mode, client %s allowed = %v, want %v", addr, got, want)
		}
	}
	c, err := Parse(strings.NewReader("allow_clients: [127.0.0.1, 192.168.0.0/24]\n"))
	if err != nil {
		t.Fatal(err)
	}
	allow = c.ClientAllowed()
	if !allow(netip.MustParseAddr("127.0.0.1")) || allow(netip.MustParseAddr("127.0.0.2")) || !allow(netip.MustParseAddr("192.168.0.9")) {
		t.Error("allow_clients not applied")
	}
	gw, err := Parse(strings.NewReader("listeners: [{address: '0.0.0.0:993'}]\nweb: {mode: gateway, public_url: 'https://gw.example.com'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if gw.ClientAllowed() != nil {
		t.Error("gateway mode restricts clients by default")
	}
	if _, err := Parse(strings.NewReader("allow_clients: [lan]\n")); err == nil || !strings.Contains(err.Error(), "allow_clients[0]") {
		t.Errorf("bad prefix: %v", err)
	}
}
